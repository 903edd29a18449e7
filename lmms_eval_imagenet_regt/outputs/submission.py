"""Leaderboard submissions: a versioned JSON per (model, task) run, its validator, and the Hub's
`.eval_results/` YAML for the model repo.

Schema `lmms-eval-imagenet-regt/submission`, version 1 (all accuracies are fractions in [0, 1]):

    schema, schema_version, created
    model: {id, revision, lmms_eval_model, model_args, info (plugin models: weights, preprocessing)}
    task, protocol
    labels: {hash}                    sha256 of the labels scored (equals the dataset card's for a full run)
    settings: {names, label_format, option_set, num_options, seed, encoder, templates, lenient}
    prompt_hash, decoding (generation kwargs), batch_size, world_size, versions, n_images
    metrics: {imgt_A, regt_A, ..., count_A, ...}    every numeric metric of the task
"""

from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..protocol.settings import PROTOCOLS
from ..records import METRICS
from ..scoring import CATEGORIES

SCHEMA = "lmms-eval-imagenet-regt/submission"
SCHEMA_VERSION = 1
#: The benchmark dataset named in `.eval_results` (ImageNet-1k's validation split, on the Hub).
EVAL_RESULTS_DATASET = "ILSVRC/imagenet-1k"
_TASK = re.compile(r"^imagenet_(regt|real)_(ow|cw|cwplus|mc_[a-z_]+?)(_seed\d+)?$")
_HEX = re.compile(r"^[0-9a-f]+$")
_STRING_METRICS = {"prompt_hash", "labels_hash", "versions", "model_info"}
REQUIRED = {
    "schema": str,
    "schema_version": int,
    "created": str,
    "model": dict,
    "task": str,
    "protocol": str,
    "labels": dict,
    "settings": dict,
    "prompt_hash": str,
    "decoding": dict,
    "batch_size": (int, str),
    "world_size": int,
    "versions": str,
    "n_images": int,
    "metrics": dict,
}


def _model_arg(model_args: str, *keys: str) -> str | None:
    for part in (model_args or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() in keys:
            return value.strip()
    return None


def build_submissions(results_path: str | Path, model_id: str | None = None, revision: str | None = None) -> list[dict]:
    """One submission per imagenet_* task in an lmms-eval results file."""
    data = json.loads(Path(results_path).read_text(encoding="utf-8"))
    run_config = data.get("config", {})
    model_args = run_config.get("model_args") or ""
    if isinstance(model_args, dict):
        model_args = ",".join(f"{k}={v}" for k, v in model_args.items())
    submissions = []
    for task, results in data["results"].items():
        if not _TASK.match(task):
            continue
        values = {key.split(",")[0]: value for key, value in results.items() if "," in key and "_stderr" not in key}
        lacking = [m for m in ("labels_hash", "prompt_hash", "world_size", "versions", "count_A") if m not in values]
        if lacking:
            raise InputError(
                results_path, f"task {task} lacks {', '.join(lacking)}: not written by this plugin version"
            )
        config = data["configs"][task]
        settings = dict(config["lmms_eval_specific_kwargs"].get("default", config["lmms_eval_specific_kwargs"]))
        protocol = settings.pop("protocol")
        decoding = {**(config.get("generation_kwargs") or {})}
        if run_config.get("gen_kwargs"):
            decoding["cli_gen_kwargs"] = run_config["gen_kwargs"]
        submissions.append(
            {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "model": {
                    "id": model_id
                    or _model_arg(model_args, "pretrained", "model", "model_version")
                    or run_config["model"],
                    "revision": revision or _model_arg(model_args, "revision") or "unknown",
                    "lmms_eval_model": run_config.get("model"),
                    "model_args": model_args,
                    "info": values.pop("model_info", ""),
                },
                "task": task,
                "protocol": protocol,
                "labels": {"hash": values.pop("labels_hash")},
                "settings": settings,
                "prompt_hash": values.pop("prompt_hash"),
                "decoding": decoding,
                "batch_size": run_config.get("batch_size"),
                "world_size": values.pop("world_size"),
                "versions": values.pop("versions"),
                "n_images": values["count_A"],
                "metrics": values,
            }
        )
    if not submissions:
        raise InputError(results_path, "no imagenet_regt_* or imagenet_real_* task in this results file")
    return submissions


def validate(submission: Any, expected_labels_hash: str | None = None) -> list[str]:
    """Every problem found (empty when valid): missing fields, types, ranges, counts, hashes."""
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
        problems.append(f"schema must be {SCHEMA} version {SCHEMA_VERSION}")
    if submission["protocol"] not in PROTOCOLS:
        problems.append(f"protocol must be one of {', '.join(PROTOCOLS)} (got {submission['protocol']!r})")
    match = _TASK.match(submission["task"])
    if not match:
        problems.append(f"task {submission['task']!r} is not an imagenet_regt_* or imagenet_real_* task")
    elif not match.group(2).startswith(submission["protocol"] if submission["protocol"] != "mc" else "mc_"):
        problems.append(f"task {submission['task']!r} does not match protocol {submission['protocol']!r}")
    if not submission["model"].get("id"):
        problems.append("model.id is empty")
    labels_hash = submission["labels"].get("hash")
    if not isinstance(labels_hash, str) or len(labels_hash) != 64 or not _HEX.match(labels_hash):
        problems.append("labels.hash must be a sha256 hex digest")
    elif expected_labels_hash and labels_hash != expected_labels_hash:
        problems.append(
            f"labels.hash {labels_hash[:16]}… does not match the expected labels {expected_labels_hash[:16]}…"
        )
    if len(submission["prompt_hash"]) != 16 or not _HEX.match(submission["prompt_hash"]):
        problems.append("prompt_hash must be 16 hex digits")
    if submission["world_size"] < 1:
        problems.append("world_size must be at least 1")
    problems += _metric_problems(submission)
    return problems


def _type_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({dict: "an object", str: "a string", int: "an integer"}[k] for k in kinds)


def _metric_problems(submission: dict) -> list[str]:
    metrics, protocol = submission["metrics"], submission["protocol"]
    problems = []
    expected = set(METRICS.get(protocol, ())) - _STRING_METRICS - {"world_size"}
    missing = sorted(expected - set(metrics))
    if missing:
        problems.append(f"metrics missing: {', '.join(missing)}")
    for name, value in metrics.items():
        if name.startswith("count_"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"metric {name} must be a non-negative integer (got {value!r})")
        elif (
            name != "answer_length"
            and value is not None
            and (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0)
        ):
            problems.append(f"metric {name} = {value!r} is outside [0, 1]")
    if problems:
        return problems
    counts = {c: metrics.get(f"count_{c}", 0) for c in CATEGORIES}
    for whole, parts in (("S", ("S+", "S-")), ("M", ("M+", "M-"))):
        if counts[whole] != sum(counts[p] for p in parts):
            problems.append(f"count_{whole} = {counts[whole]} is not count_{parts[0]} + count_{parts[1]}")
    leaves = counts["S+"] + counts["S-"] + counts["M+"] + counts["M-"]
    if counts["A"] not in (leaves, leaves + counts["N"]):
        problems.append(f"count_A = {counts['A']} does not add up from the categories ({leaves} + N {counts['N']})")
    if submission["n_images"] != counts["A"]:
        problems.append(f"n_images = {submission['n_images']} differs from count_A = {counts['A']}")
    for kind in ("imgt", "regt"):
        for whole, parts in (("S", ("S+", "S-")), ("M", ("M+", "M-"))):
            if counts[whole] and all(metrics.get(f"{kind}_{p}") is not None or not counts[p] for p in parts):
                weighted = sum((metrics.get(f"{kind}_{p}") or 0) * counts[p] for p in parts) / counts[whole]
                if not math.isclose(weighted, metrics.get(f"{kind}_{whole}") or 0, abs_tol=1e-9):
                    problems.append(f"{kind}_{whole} is not the count-weighted mean of its parts")
    return problems


def validate_file(path: str | Path, expected_labels_hash: str | None = None) -> dict:
    """Load and validate; raise InputError listing every problem, naming the file."""
    try:
        submission = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON: {error}") from None
    problems = validate(submission, expected_labels_hash)
    if problems:
        raise InputError(path, "invalid submission:\n  - " + "\n  - ".join(problems))
    return submission


def eval_results_yaml(submission: dict, dataset_id: str = EVAL_RESULTS_DATASET) -> str:
    """The Hub's `.eval_results/<task>.yaml` entry: ReGT accuracy (category A) in percent."""
    import yaml

    metrics = submission["metrics"]
    entry = {
        "dataset": {"id": dataset_id, "task_id": submission["task"]},
        "value": round(100 * metrics["regt_A"], 2),
        "date": submission["created"][:10],
        "source": {"name": "lmms-eval-imagenet-regt", "url": "https://pypi.org/project/lmms-eval-imagenet-regt/"},
        "notes": (
            f"ReGT accuracy, all images ({submission['n_images']}); ImGT {100 * metrics['imgt_A']:.2f}; "
            f"protocol {submission['protocol']}; labels sha256 {submission['labels']['hash'][:16]}"
        ),
    }
    return yaml.safe_dump([entry], sort_keys=False)


def write_submissions(results_dir: str | Path, out: str | Path, **model: str | None) -> list[Path]:
    """Submissions (and `.eval_results/` YAML) for the newest results file under `results_dir`."""
    results = sorted(Path(results_dir).rglob("*_results.json"), key=lambda p: p.name)
    if not results:
        raise InputError(results_dir, "no lmms-eval results file (*_results.json) found")
    out = Path(out)
    (out / ".eval_results").mkdir(parents=True, exist_ok=True)
    written = []
    for submission in build_submissions(results[-1], **model):
        problems = validate(submission)
        if problems:
            raise InputError(results[-1], f"{submission['task']}: " + "; ".join(problems))
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", submission["model"]["id"]).strip("_")
        path = out / f"{slug}__{submission['task']}.json"
        path.write_text(json.dumps(submission, indent=2), encoding="utf-8")
        (out / ".eval_results" / f"{submission['task']}.yaml").write_text(eval_results_yaml(submission))
        written.append(path)
    return written
