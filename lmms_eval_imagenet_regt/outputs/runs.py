"""Reading a finished run: lmms-eval's results file and a task's samples file, checked against each other.

A results file holds, per task of ours, what the run was (`configs.<task>.metadata.imagenet_regt`:
settings, label set and hash, prompt hash) and, unless the run was `--predict_only`, its full report
(`imagenet_regt.<task>`: every metric, outcomes, the images scored and their hashes). A samples file holds
one record per image. Before anything is re-scored, exported or submitted, the two must agree: the same
task, as many records as images scored, the same image and label hashes. A samples file cut short by a
killed run, or a results file of another run, is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..files import iter_jsonl, load_json
from ..labels.ground_truth import normalize_image_id
from ..protocol.settings import ProtocolConfig
from ..records import RECORD_KEY, check_record, images_block, make_record, unique_records


@dataclass(frozen=True)
class TaskRun:
    """One task of one run, as its files describe it."""

    task: str
    results_path: Path
    config: ProtocolConfig
    #: what the run recorded about the task before any answer (settings, labels, prompt hash)
    recorded: dict
    #: the task's full report; None for a `--predict_only` run
    report: dict | None
    #: the per-image records, when read from a samples file
    records: list[dict] | None = None
    samples_path: Path | None = None

    @property
    def label_set(self) -> str:
        return self.recorded["labels"]["set"]


def read_results(path: str | Path) -> dict:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("configs"), dict):
        raise InputError(path, "not an lmms-eval results file (no 'configs')")
    return data


def task_run(results_path: str | Path, task: str, results: dict | None = None) -> TaskRun:
    """A task of a results file (without its samples)."""
    results = results if results is not None else read_results(results_path)
    recorded = ((results["configs"].get(task) or {}).get("metadata") or {}).get("imagenet_regt")
    if not isinstance(recorded, dict):
        raise InputError(results_path, f"task {task!r} was not run by this version of the imagenet-regt plugin")
    config = ProtocolConfig.from_dict(recorded["settings"], f"{results_path}: task {task}")
    report = (results.get("imagenet_regt") or {}).get(task)
    return TaskRun(task, Path(results_path), config, recorded, report)


def samples_beside(results_path: Path, task: str) -> Path:
    """Where lmms-eval writes a task's samples next to its results file."""
    return results_path.with_name(f"{results_path.name.removesuffix('_results.json')}_samples_{task}.jsonl")


def results_beside(samples_path: Path) -> tuple[Path, str]:
    """The results file an lmms-eval samples file (`<date>_samples_<task>.jsonl`) belongs to, and the task."""
    stamp, _, task = samples_path.name.removesuffix(".jsonl").partition("_samples_")
    results_path = samples_path.with_name(f"{stamp}_results.json")
    if not task or not results_path.is_file():
        raise InputError(samples_path, f"expected an lmms-eval samples file with {results_path.name} beside it")
    return results_path, task


def read_samples(samples_path: str | Path) -> TaskRun:
    """A task run with its records, after checking the samples against the results file beside them."""
    samples_path = Path(samples_path)
    results_path, task = results_beside(samples_path)
    run = task_run(results_path, task)
    records, answers = [], []
    for line, sample in iter_jsonl(samples_path):
        if not isinstance(sample, dict):
            raise InputError(samples_path, "a sample must be a JSON object", line=line)
        record = sample.get(RECORD_KEY)
        if isinstance(record, dict) and record.get("task") == task:
            records.append(check_record(record, samples_path, line=line))
        elif run.report is None and "target" in sample and "filtered_resps" in sample:
            answers.append((line, sample["target"], sample["filtered_resps"]))
        else:
            raise InputError(samples_path, f"not a sample of task {task} written by this plugin", line=line)
    if answers:
        records = _records_from_answers(run, samples_path, answers)
    records = unique_records(records, str(samples_path))
    run = TaskRun(task, results_path, run.config, run.recorded, run.report, records, samples_path)
    check_against_results(run)
    return run


def check_against_results(run: TaskRun) -> None:
    """The samples' records must be the images the results file says were scored, with the same labels."""
    where = f"does not match its results file {run.results_path.name}"
    if run.report is None:
        return
    expected = run.report["images"]
    found = images_block(run.records)
    if found["scored"] != expected["scored"]:
        raise InputError(
            run.samples_path,
            f"{where}: {found['scored']} records, the results say {expected['scored']} images were scored "
            "(a run stopped while writing its samples, or the files of two runs)",
        )
    for key, what in (("sha256", "image ids"), ("labels_sha256", "labels")):
        if found[key] != expected[key]:
            raise InputError(run.samples_path, f"{where}: the records' {what} differ from the scored images'")


def _records_from_answers(run: TaskRun, samples_path: Path, answers: list[tuple[int, object, object]]) -> list[dict]:
    """Records for a `--predict_only` run: its answers read now, by the recorded settings and labels."""
    from ..lmms.plugin import task_labels
    from ..lmms.tasks import TaskSpec

    source = run.recorded["labels"]["source"]
    labels = task_labels(source, "recorded label source")
    if labels.set_sha256 != run.recorded["labels"]["sha256"]:
        raise InputError(source, "its labels changed since the run (hash differs from the recorded one)")
    spec = TaskSpec(run.task, run.config, labels, source, empty_is_failure=run.recorded["failed_on_empty_response"])
    spec.prefetch([_answer_text(answer) for _, _, answer in answers])
    records = []
    for line, target, answer in answers:
        image_id = normalize_image_id(target, samples_path, line=line)
        raw = _answer_text(answer)
        options = spec.options(image_id) if run.config.protocol == "mc" else None
        reading = spec.read(raw, image_id)
        records.append(make_record(run.task, run.config.protocol, spec.image(image_id), raw, reading, options))
    return records


def _answer_text(logged: object) -> str:
    """lmms-eval logs one generation as `[text]` (or the bare text); anything else is no answer."""
    if isinstance(logged, list) and len(logged) == 1:
        logged = logged[0]
    return logged if isinstance(logged, str) else ""
