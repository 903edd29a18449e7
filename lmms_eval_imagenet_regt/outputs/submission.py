"""Leaderboard submissions: a versioned JSON per (model, task) run, its validator, and the Hub's
`.eval_results/` YAML for the model repo.

Schema `lmms-eval-imagenet-regt/submission`, version 3 (all accuracies are fractions in [0, 1]):

    schema, schema_version, created
    model: {id, revision, lmms_eval_model, model_args, info}   local paths → file name and content hash
    task, protocol, settings, prompt_hash
    labels: {set, sha256, images}        the label set scored against: name, content hash, size
    images: {scored, sha256, labels_sha256, limit, dataset_rows}, coverage (scored / labelled images)
    outcomes: {parsed, mapped, unanswered, truncated, failed}    answers per outcome, all images
    decoding, batch_size, world_size, versions, run: {date, results_file}
    metrics: {imgt_A, <set>_A, ..., count_A, ...}    every numeric metric of the task's report
    intervals: {imgt_A: [low, high], ...}, interval_method    the 95% interval of every accuracy
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import load_json, write_text
from ..labels.categories import CATEGORIES, PARTS
from ..labels.ground_truth import HUB_REPO_ID
from ..protocol.answers import OUTCOMES
from ..protocol.settings import PROTOCOLS
from .runs import TaskRun, read_results, read_samples, samples_beside, task_run

SCHEMA = "lmms-eval-imagenet-regt/submission"
SCHEMA_VERSION = 3
#: How `.eval_results` notes name each label set.
LABEL_SET_NAMES = {"regt": "ReGT labels", "real": "ReaL labels"}
_TASK = re.compile(r"imagenet_(regt|real)_(ow|cw|cwplus|mc_[a-z_]+?)(_seed\d+)?")
_HEX = re.compile(r"[0-9a-f]+")
REQUIRED = {
    "schema": str,
    "schema_version": int,
    "created": str,
    "model": dict,
    "task": str,
    "protocol": str,
    "labels": dict,
    "images": dict,
    "coverage": (int, float),
    "outcomes": dict,
    "settings": dict,
    "prompt_hash": str,
    "decoding": dict,
    "world_size": int,
    "versions": dict,
    "metrics": dict,
    "intervals": dict,
    "interval_method": dict,
}


def results_file(results: str | Path) -> Path:
    """The results file to package: the file given, or the only `*_results.json` under a folder."""
    path = Path(results)
    if path.is_file():
        return path
    found = sorted(path.rglob("*_results.json"))
    if not found:
        raise InputError(path, "no lmms-eval results file (*_results.json) found")
    if len(found) > 1:
        shown = ", ".join(str(p) for p in found[-3:])
        raise InputError(path, f"holds {len(found)} runs' results; name the results file to submit (e.g. {shown})")
    return found[0]


def build_submissions(
    results_path: str | Path,
    model_id: str | None = None,
    revision: str | None = None,
    *,
    allow_failed: bool = False,
) -> list[dict]:
    """One submission per imagenet_* task of a results file, after checking each task's samples file."""
    results_path = Path(results_path)
    data = read_results(results_path)
    run_config = data.get("config") or {}
    model_args = run_config.get("model_args") or ""
    if isinstance(model_args, dict):
        model_args = ",".join(f"{k}={v}" for k, v in model_args.items())
    submissions = []
    for task in data.get("results", {}):
        if not _TASK.fullmatch(task):
            continue
        run = task_run(results_path, task, data)
        if run.report is None:
            raise InputError(results_path, f"task {task} has no scores (a --predict_only run): rescore it first")
        _check_samples(run, data)
        failed = run.report["outcomes"]["A"].get("failed", 0)
        if failed and not allow_failed:
            raise InputError(
                results_path,
                f"task {task}: {failed} of {run.report['images']['scored']} requests failed; re-run them, or "
                "pass --allow-failed to submit a score that counts them wrong",
            )
        submissions.append(_submission(run, data, model_args, model_id, revision))
    if not submissions:
        raise InputError(results_path, "no imagenet_regt_* or imagenet_real_* task in this results file")
    return submissions


def _check_samples(run: TaskRun, data: dict) -> None:
    """The task's samples file, when the run wrote one, must match the results (else it was cut short)."""
    samples = samples_beside(run.results_path, run.task)
    logged = ((data.get("config") or {}).get("resolved_cli_args") or {}).get("log_samples")
    if samples.is_file():
        read_samples(samples)
    elif logged:
        raise InputError(run.results_path, f"task {run.task}: the run logged samples, but its samples file is missing")


def _submission(run: TaskRun, data: dict, model_args: str, model_id: str | None, revision: str | None) -> dict:
    report, run_config, config = run.report, data.get("config") or {}, data["configs"][run.task]
    decoding = {**(config.get("generation_kwargs") or {})}
    if run_config.get("gen_kwargs"):
        decoding["cli_gen_kwargs"] = run_config["gen_kwargs"]
    args = public_model_args(model_args)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "id": model_id or _model_arg(args, "pretrained", "model", "model_version") or run_config.get("model"),
            "revision": revision or _model_arg(args, "revision") or "unknown",
            "lmms_eval_model": run_config.get("model"),
            "model_args": args,
            "info": {key: _public(value) for key, value in (report.get("model_info") or {}).items()},
        },
        "task": run.task,
        "protocol": report["protocol"],
        "settings": report["settings"],
        "prompt_hash": report["prompt_hash"],
        "labels": {key: report["labels"][key] for key in ("set", "sha256", "images")},
        "images": report["images"],
        "coverage": report["coverage"],
        "outcomes": {outcome: report["outcomes"]["A"].get(outcome, 0) for outcome in OUTCOMES},
        "decoding": decoding,
        "batch_size": run_config.get("batch_size"),
        "world_size": report["world_size"],
        "versions": report["versions"],
        "run": {"date": data.get("date"), "results_file": run.results_path.name},
        "metrics": {key: value for key, value in report["metrics"].items() if value is None or _is_number(value)},
        "intervals": report["intervals"],
        "interval_method": report["interval_method"],
    }


def _model_arg(model_args: str, *keys: str) -> str | None:
    for part in (model_args or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() in keys:
            return value.strip()
    return None


def public_model_args(model_args: str) -> str:
    """Model arguments with every local path replaced by its file name and a content hash."""
    parts = []
    for part in (model_args or "").split(","):
        key, sep, value = part.partition("=")
        parts.append(f"{key}{sep}{_public(value)}" if sep else part)
    return ",".join(parts)


def _public(value: str) -> str:
    path = Path(value.strip()).expanduser() if value.strip() else None
    if path is None or not (path.is_absolute() or value.strip().startswith(".")) or not path.exists():
        return value
    return f"{path.name}#sha256:{_content_hash(path)[:16]}"


def _content_hash(path: Path) -> str:
    """Hash of a file's bytes, or of a folder's file names, sizes and small files' bytes."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path) if file != path else file.name}:{size}\n".encode())
        if path.is_file() or size <= 10_000_000:
            with open(file, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- validation ----------------------------------------------------------------------------------------


def validate(submission: Any, expected_labels_hash: str | None = None) -> list[str]:
    """Every problem found (empty when valid): everything the leaderboard relies on, checked."""
    if not isinstance(submission, dict):
        return ["a submission must be a JSON object"]
    problems = [
        f"missing field '{name}'" if name not in submission else f"field '{name}' must be {_type_name(kind)}"
        for name, kind in REQUIRED.items()
        if name not in submission or not isinstance(submission[name], kind) or isinstance(submission[name], bool)
    ]
    if problems:
        return problems
    if submission["schema"] != SCHEMA or submission["schema_version"] != SCHEMA_VERSION:
        return [f"schema must be {SCHEMA} version {SCHEMA_VERSION}"]
    problems += _model_problems(submission["model"])
    problems += _text_problems(submission, ("task", "protocol", "created", "prompt_hash"), limit=100)
    if problems:
        return problems
    protocol, task = submission["protocol"], submission["task"]
    if protocol not in PROTOCOLS:
        problems.append(f"protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    match = _TASK.fullmatch(task)
    if not match:
        problems.append(f"task {task!r} is not an imagenet_regt_* or imagenet_real_* task")
    else:
        if (match.group(2) if protocol != "mc" else match.group(2)[:2]) != protocol:
            problems.append(f"task {task!r} does not match protocol {protocol!r}")
        if submission["labels"].get("set") != match.group(1):
            problems.append(f"labels.set must be {match.group(1)!r} for task {task!r}")
    problems += _labels_problems(submission["labels"], expected_labels_hash)
    if len(submission["prompt_hash"]) != 16 or not _HEX.fullmatch(submission["prompt_hash"]):
        problems.append("prompt_hash must be 16 hex digits")
    if not 1 <= submission["world_size"] <= 100_000:
        problems.append("world_size must be between 1 and 100000")
    problems += _settings_problems(submission)
    problems += _json_size_problems(submission, ("decoding", "run", "interval_method"), limit=10_000)
    versions = submission["versions"]
    if len(versions) > 50 or not all(_short_text(k, 100) and _short_text(v, 100) for k, v in versions.items()):
        problems.append("versions must map package names to version strings")
    if problems:
        return problems
    problems += _images_problems(submission)
    if problems:
        return problems
    return _metric_problems(submission) or _interval_problems(submission)


#: Longest text accepted in each free-text field of a submission (names, ids, revisions).
TEXT_LIMIT = 200


def _short_text(value: object, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def _text_problems(values: dict, names: tuple[str, ...], limit: int, prefix: str = "") -> list[str]:
    problems = []
    for name in names:
        value = values.get(name)
        if not isinstance(value, str):
            problems.append(f"{prefix}{name} must be a string")
        elif len(value) > limit:
            problems.append(f"{prefix}{name} is longer than {limit} characters")
        elif not value.isprintable():
            problems.append(f"{prefix}{name} holds control characters")
    return problems


def _model_problems(model: dict) -> list[str]:
    problems = _text_problems(model, ("id", "revision"), TEXT_LIMIT, "model.")
    if not problems and not model["id"].strip():
        problems.append("model.id is empty")
    if model.get("lmms_eval_model") is not None:
        problems += _text_problems(model, ("lmms_eval_model",), TEXT_LIMIT, "model.")
    problems += _text_problems(model, ("model_args",), 2_000, "model.")
    info = model.get("info", {})
    if (
        not isinstance(info, dict)
        or len(info) > 20
        or not all(_short_text(k, 100) and isinstance(v, str) and len(v) <= 2_000 for k, v in info.items())
    ):
        problems.append("model.info must map up to 20 names to texts of at most 2000 characters")
    return problems


def _labels_problems(labels: dict, expected_hash: str | None) -> list[str]:
    problems = []
    labels_hash = labels.get("sha256")
    if not isinstance(labels_hash, str) or len(labels_hash) != 64 or not _HEX.fullmatch(labels_hash):
        problems.append("labels.sha256 must be a sha256 hex digest")
    elif expected_hash and labels_hash != expected_hash:
        problems.append(f"labels.sha256 {labels_hash[:16]}… does not match the expected labels {expected_hash[:16]}…")
    if not _count(labels.get("images")) or not labels["images"]:
        problems.append("labels.images must be a positive integer")
    return problems


def _settings_problems(submission: dict) -> list[str]:
    from ..protocol.settings import ProtocolConfig

    try:
        settings = ProtocolConfig.from_dict(submission["settings"], "settings")
    except InputError as error:
        return [str(error)]
    except TypeError:
        return ["settings must hold the protocol settings"]
    if settings.protocol != submission["protocol"]:
        return [f"settings.protocol {settings.protocol!r} differs from protocol {submission['protocol']!r}"]
    return []


def _json_size_problems(submission: dict, names: tuple[str, ...], limit: int) -> list[str]:
    problems = []
    for name in names:
        if name in submission and len(json.dumps(submission[name])) > limit:
            problems.append(f"{name} is larger than {limit} characters")
    return problems


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _images_problems(submission: dict) -> list[str]:
    images, outcomes = submission["images"], submission["outcomes"]
    problems = []
    if not _count(images.get("scored")):
        problems.append("images.scored must be a non-negative integer")
    for key in ("sha256", "labels_sha256"):
        value = images.get(key)
        if not isinstance(value, str) or len(value) != 64 or not _HEX.fullmatch(value):
            problems.append(f"images.{key} must be a sha256 hex digest")
    limit = images.get("limit")
    if limit is not None and (not _is_number(limit) or not math.isfinite(limit) or limit < 0):
        problems.append("images.limit must be null or a non-negative number")
    if images.get("dataset_rows") is not None and not _count(images["dataset_rows"]):
        problems.append("images.dataset_rows must be null or a non-negative integer")
    if set(outcomes) != set(OUTCOMES):
        problems.append(f"outcomes must count each of {', '.join(OUTCOMES)}")
    for name, value in outcomes.items():
        if not _count(value):
            problems.append(f"outcomes.{name} must be a non-negative integer")
    if problems:
        return problems
    if sum(outcomes.values()) != images["scored"]:
        problems.append(f"outcomes add up to {sum(outcomes.values())}, not images.scored = {images['scored']}")
    coverage = images["scored"] / submission["labels"]["images"]
    if not math.isclose(submission["coverage"], coverage, abs_tol=1e-12):
        problems.append("coverage must be images.scored / labels.images")
    return problems


def warnings(submission: dict) -> list[str]:
    """What a valid submission should make a reader careful about (partial runs, failed requests)."""
    notes = []
    images, coverage = submission["images"], submission["coverage"]
    if images.get("limit") is not None:
        notes.append(f"run with --limit {images['limit']}: {images.get('scored')} images, not a full evaluation")
    elif coverage < 1:
        notes.append(f"covers {100 * coverage:.1f}% of the label set's {submission['labels'].get('images')} images")
    if submission["outcomes"].get("failed"):
        notes.append(f"{submission['outcomes']['failed']} failed requests are scored wrong")
    return notes


def _type_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "an object", str: "a string", int: "an integer", float: "a number"}
    return " or ".join(names[k] for k in kinds)


def _metric_problems(submission: dict) -> list[str]:
    metrics, prefix = submission["metrics"], submission["labels"].get("set")
    problems = []
    for name in ("imgt_A", f"{prefix}_A", "im_and_re_A", "count_A"):
        if name not in metrics:
            problems.append(f"metrics missing: {name}")
    if len(metrics) > 500:
        problems.append("metrics holds more than 500 values")
    for name, value in metrics.items():
        if not _short_text(name, 50):
            problems.append("metric names must be short printable texts")
        elif name.startswith("count_"):
            if not _count(value):
                problems.append(f"metric {name} must be a non-negative integer (got {value!r})")
        elif name == "answer_length":
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                problems.append(f"metric answer_length must be a non-negative number (got {value!r})")
        elif value is not None and (not _is_number(value) or not 0.0 <= value <= 1.0):
            problems.append(f"metric {name} = {value!r} is outside [0, 1]")
    if problems:
        return problems
    counts = {c: metrics.get(f"count_{c}", 0) for c in CATEGORIES}
    for whole in ("S", "M"):
        parts = PARTS[whole]
        if counts[whole] != sum(counts[p] for p in parts):
            problems.append(f"count_{whole} = {counts[whole]} is not count_{parts[0]} + count_{parts[1]}")
    leaves = counts["S+"] + counts["S-"] + counts["M+"] + counts["M-"]
    if counts["A"] not in (leaves, leaves + counts["N"]):
        problems.append(f"count_A = {counts['A']} does not add up from the categories ({leaves} + N {counts['N']})")
    if submission["images"].get("scored") != counts["A"]:
        problems.append(f"images.scored = {submission['images'].get('scored')} differs from count_A = {counts['A']}")
    for name, value in metrics.items():
        kind, _, category = name.rpartition("_")
        accuracy = kind.removeprefix("cw_") in ("imgt", prefix, "im_and_re", "oop") and value is not None
        images = counts.get(category) if accuracy else 0
        if images and abs(value * images - round(value * images)) > 1e-6:
            problems.append(f"{name} = {value!r} is no whole number of the {images} images")
    for kind in ("imgt", prefix):
        for whole in ("S", "M", "A"):
            parts = PARTS[whole] if counts["A"] == leaves + counts["N"] else PARTS[whole][:4]
            if not counts[whole]:
                continue
            weighted = sum((metrics.get(f"{kind}_{p}") or 0) * counts[p] for p in parts if counts[p])
            if not math.isclose(weighted / counts[whole], metrics.get(f"{kind}_{whole}") or 0, abs_tol=1e-9):
                problems.append(f"{kind}_{whole} is not the count-weighted mean of its parts")
    return problems


def _interval_problems(submission: dict) -> list[str]:
    """Each interval names a reported accuracy and holds it: 0 ≤ low ≤ value ≤ high ≤ 1."""
    metrics, intervals = submission["metrics"], submission["intervals"]
    if len(intervals) > len(metrics):
        return ["intervals holds more entries than metrics"]
    problems = []
    for name, interval in intervals.items():
        value = metrics.get(name)
        if not _is_number(value) or name.startswith("count_"):
            problems.append(f"interval {str(name)[:50]!r} names no reported accuracy")
        elif (
            not isinstance(interval, list)
            or len(interval) != 2
            or not all(_is_number(bound) and math.isfinite(bound) for bound in interval)
            or not 0.0 <= interval[0] <= value + 1e-9
            or not value - 1e-9 <= interval[1] <= 1.0
        ):
            problems.append(f"interval of {name} must be [low, high] with 0 <= low <= {value!r} <= high <= 1")
    return problems


def validate_file(path: str | Path, expected_labels_hash: str | None = None) -> dict:
    """Load and validate; raise InputError listing every problem on one line, naming the file."""
    submission = load_json(path)
    problems = validate(submission, expected_labels_hash)
    if problems:
        raise InputError(path, "invalid submission: " + "; ".join(problems))
    return submission


def eval_results_yaml(submission: dict, benchmark: str) -> str:
    """The Hub's `.eval_results/<task>.yaml` entry (its current schema: `dataset.id` a Hub benchmark dataset,
    `dataset.task_id`, `value`, `date`, `source`, `notes`): accuracy against the task's label set, in %,
    with the labels, their hash, the number of images and the interval in the notes."""
    import yaml

    metrics, labels, images = submission["metrics"], submission["labels"], submission["images"]
    low, high = submission["intervals"][f"{labels['set']}_A"]
    entry = {
        "dataset": {"id": benchmark, "task_id": submission["task"]},
        "value": round(100 * metrics[f"{labels['set']}_A"], 2),
        "date": submission["created"][:10],
        "source": {
            "url": "https://pypi.org/project/lmms-eval-imagenet-regt/",
            "name": f"lmms-eval-imagenet-regt {submission['versions'].get('lmms-eval-imagenet-regt', '')}".strip(),
        },
        "notes": (
            f"{LABEL_SET_NAMES.get(labels['set'], labels['set'])} (sha256 {labels['sha256'][:16]}), "
            f"{images['scored']:,} of {labels['images']:,} images; 95% CI {100 * low:.2f}-{100 * high:.2f}; "
            f"ImGT {100 * metrics['imgt_A']:.2f}; protocol {submission['protocol']}"
        ),
    }
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)


def eval_results_benchmark(submission: dict, label_source: str, benchmark: str | None) -> tuple[str | None, str]:
    """The Hub benchmark dataset a submission's `.eval_results` entry may name, or None and why not.

    Only a run that scored every image of its label set is a score on that benchmark; the benchmark is the
    labels' own Hub dataset (given, or the run's label source when that is a Hub id), never the bare
    ImageNet repo, whose original labels the score is not against.
    """
    if submission["coverage"] < 1:
        return None, (
            f"{submission['task']} scored {submission['images']['scored']:,} of the label set's "
            f"{submission['labels']['images']:,} images: not a score on that benchmark"
        )
    benchmark = benchmark or (
        label_source if HUB_REPO_ID.fullmatch(label_source) and not Path(label_source).exists() else None
    )
    if benchmark is None:
        return None, f"{submission['task']}: its labels ({label_source}) are no Hub dataset; name one with --benchmark"
    return benchmark, ""


def write_submissions(
    results: str | Path,
    out: str | Path,
    *,
    allow_failed: bool = False,
    benchmark: str | None = None,
    **model: str | None,
) -> tuple[list[Path], list[str]]:
    """Submissions, and `.eval_results/` YAML where the score is one on a Hub benchmark, for one results file
    (or the only one under a folder); returns the files written and why any `.eval_results` was not."""
    path = results_file(results)
    out = Path(out)
    written, notes, sources = [], [], read_results(path)["configs"]
    for submission in build_submissions(path, allow_failed=allow_failed, **model):
        problems = validate(submission)
        if problems:
            raise InputError(path, f"{submission['task']}: " + "; ".join(problems))
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(submission["model"]["id"])).strip("_")[:100] or "model"
        written.append(write_text(out / f"{slug}__{submission['task']}.json", json.dumps(submission, indent=2)))
        source = sources[submission["task"]]["metadata"]["imagenet_regt"]["labels"]["source"]
        hub_dataset, why_not = eval_results_benchmark(submission, str(source), benchmark)
        if hub_dataset is None:
            notes.append(why_not)
            continue
        yaml_path = out / ".eval_results" / f"{submission['task']}.yaml"
        written.append(write_text(yaml_path, eval_results_yaml(submission, hub_dataset)))
    return written, notes
