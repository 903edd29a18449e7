"""Per-image records and the metrics of a task computed from them.

One compact record per image per task is what a run logs in its samples file (under the `images` key):

    {"task", "image_id", "imgt", "labels", "not_sure",
     "answer" (the raw answer, first RAW_CHARS characters), "answer_chars", "answer_sha256",
     "outcome" (parsed, mapped, unanswered, truncated, failed), "cleaned" (what was matched or mapped),
     "classes" (the final predicted classes), "similarity" (mapped answers), "out_of_prompt" (CW, CW+, MC),
     "options" (MC)}

The same function scores the records during the run (rank 0's aggregation) and afterwards
(`imagenet-regt rescore`), so a re-score with the run's own settings reproduces the run exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputError
from .labels.categories import CATEGORIES
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import GroundTruth, ImageLabels, labels_sha256, normalize_image_id
from .labels.vocabulary import NUM_CLASSES
from .protocol.answers import CLEANED_CHARS, OUTCOMES, Reading
from .protocol.mapping import map_answers
from .protocol.settings import ProtocolConfig
from .scoring import ScoreTable, score_predictions

#: Characters of the raw answer kept in a record (its full length and hash are kept too).
RAW_CHARS = 1000
RECORD_KEY = "images"


def make_record(
    task: str, protocol: str, labels: ImageLabels, raw: str, reading: Reading, options: list[int] | None
) -> dict:
    """The record of one image: its labels, what the model said, and what it was read as."""
    record: dict[str, Any] = {
        "task": task,
        "image_id": labels.image_id,
        "imgt": labels.imgt,
        "labels": sorted(labels.labels),
        "not_sure": labels.not_sure,
        "answer": raw[:RAW_CHARS],
        "answer_chars": len(raw),
        "answer_sha256": hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16],
        "outcome": reading.outcome,
        "cleaned": reading.cleaned,
        "classes": list(reading.classes),
    }
    if reading.similarity is not None:
        record["similarity"] = round(reading.similarity, 6)
    if protocol != "ow":
        record["out_of_prompt"] = reading.out_of_prompt
    if options is not None:
        record["options"] = options
    return record


def _indices(value: object) -> bool:
    return isinstance(value, list) and all(_index(v) for v in value)


def _index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < NUM_CLASSES


#: Each field of a record and the check its value must pass (the optional ones may be absent).
_FIELDS = {
    "task": lambda v: isinstance(v, str),
    "image_id": lambda v: isinstance(v, str),
    "imgt": _index,
    "labels": _indices,
    "not_sure": lambda v: isinstance(v, bool),
    "answer": lambda v: isinstance(v, str) and len(v) <= RAW_CHARS,
    "answer_chars": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "answer_sha256": lambda v: isinstance(v, str) and len(v) <= 64,
    "outcome": lambda v: v in OUTCOMES,
    "cleaned": lambda v: isinstance(v, str) and len(v) <= CLEANED_CHARS,
    "classes": _indices,
}
_OPTIONAL = {
    "out_of_prompt": lambda v: isinstance(v, bool),
    "similarity": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and -1.01 <= v <= 1.01,
    "options": _indices,
}


def check_record(record: object, source: str | Path, **where: int) -> dict:
    """A record read from a file, with every field of the right type; else an error naming the field."""
    if not isinstance(record, dict):
        raise InputError(source, "a record must be a JSON object", **where)
    for name, valid in _FIELDS.items():
        if name not in record:
            raise InputError(source, f"the record lacks '{name}'", **where)
        if not valid(record[name]):
            raise InputError(source, f"the record's '{name}' is not valid", value=record[name], **where)
    for name in set(record) - set(_FIELDS):
        if name not in _OPTIONAL or not _OPTIONAL[name](record[name]):
            raise InputError(source, f"the record's '{name}' is not valid", value=record[name], **where)
    normalize_image_id(record["image_id"], source, **where)
    return record


def unique_records(records: Iterable[dict], source: str = "records") -> list[dict]:
    """Records keyed by image id, sorted; the same image twice is an error unless both records are equal."""
    by_id: dict[str, dict] = {}
    for record in records:
        other = by_id.setdefault(record["image_id"], record)
        if other != record:
            raise InputError(source, "two different records for one image", value=record["image_id"])
    if not by_id:
        raise InputError(source, "no per-image records to score")
    return [by_id[i] for i in sorted(by_id)]


def records_ground_truth(records: list[dict], label_set: str, name: str = "task labels") -> GroundTruth:
    """The labels the records were scored against (those of the task's label set)."""
    images = {
        r["image_id"]: ImageLabels(r["image_id"], r["imgt"], frozenset(r["labels"]), r["not_sure"]) for r in records
    }
    return GroundTruth(name=name, images=images, label_set=label_set)


def images_block(records: list[dict]) -> dict:
    """Which images were scored: their number, a hash of their ids and a hash of their labels."""
    ids = "\n".join(r["image_id"] for r in records)
    rows = records_ground_truth(records, "")
    return {
        "scored": len(records),
        "sha256": hashlib.sha256(ids.encode()).hexdigest(),
        "labels_sha256": labels_sha256(rows.images.values()),
    }


def remap(records: list[dict], config: ProtocolConfig) -> list[dict]:
    """Records whose mapped answers are mapped again with the config's encoder and templates."""
    to_map = [r["cleaned"] for r in records if r["outcome"] == "mapped"]
    mapped = map_answers(to_map, config.encoder, config.vocabulary, config.templates) if to_map else {}
    out = []
    for record in records:
        if record["outcome"] == "mapped":
            hit = mapped[record["cleaned"]]
            record = {**record, "classes": [hit.class_index], "similarity": round(hit.similarity, 6)}
        out.append(record)
    return out


def score_records(
    records: list[dict],
    config: ProtocolConfig,
    *,
    ground_truth: GroundTruth,
    equivalences: EquivalenceSet | None = None,
    convention: str = "regt",
) -> dict[str, Any]:
    """Every metric of one task from its per-image records: a flat `metrics` dict (Tables 3–5 of the
    paper, per category; multi-label accuracies named after the label set, e.g. `regt_A` or `real_A`),
    the outcome counts per category, and which images were scored."""
    records = unique_records(records)
    equivalences = equivalences or config.equivalence_set
    final = {r["image_id"]: r["classes"] for r in records}
    oop = {r["image_id"]: bool(r.get("out_of_prompt")) for r in records} if config.protocol != "ow" else None
    outcomes = {r["image_id"]: r["outcome"] for r in records}
    table = score_predictions(final, ground_truth, equivalences, convention, out_of_prompt=oop, outcomes=outcomes)
    if table.images_scored == 0:
        raise InputError(ground_truth.name, "none of the records' images is in the ground truth")
    prefix = ground_truth.label_set
    metrics, intervals = flat_metrics(table, prefix), flat_intervals(table, prefix)
    scored = [r for r in records if r["image_id"] in ground_truth]
    metrics["answer_length"] = sum(len(r["cleaned"]) for r in scored) / len(scored)
    total = table.categories["A"]
    for outcome in OUTCOMES:
        metrics[outcome] = total.outcomes.get(outcome, 0) / total.count if total.count else None
    if config.protocol == "cwplus":
        # plain CW from the same answers: only exact matches count, a mapped answer is out of prompt
        closed = {r["image_id"]: r["classes"] if r["outcome"] == "parsed" else [] for r in records}
        plain = score_predictions(closed, ground_truth, equivalences, convention)
        metrics.update({f"cw_{k}": v for k, v in flat_metrics(plain, prefix).items() if not k.startswith("count_")})
        intervals.update({f"cw_{k}": v for k, v in flat_intervals(plain, prefix).items()})
    return {
        "metrics": metrics,
        "intervals": intervals,
        "interval_method": interval_method(table),
        "outcomes": {name: dict(score.outcomes) for name, score in table.categories.items()},
        "images": images_block(scored),
        "convention": convention,
        "equivalences": {"source": table.equivalences, "sha256": table.equivalences_sha256},
    }


def flat_metrics(table: ScoreTable, prefix: str) -> dict[str, Any]:
    """`imgt_C`, `<prefix>_C`, `im_and_re_C`, `count_C` and (when scored) `oop_C` for every category C."""
    values: dict[str, Any] = {
        "per_class_imgt": table.per_class_mean_imgt,
        f"per_class_{prefix}": table.per_class_mean_labels,
    }
    with_oop = any(score.oop is not None for score in table.categories.values())
    for name in CATEGORIES:
        score = table.categories[name]
        values.update({f"imgt_{name}": score.imgt, f"{prefix}_{name}": score.labels, f"im_and_re_{name}": score.both})
        values[f"count_{name}"] = score.count
        if with_oop:
            values[f"oop_{name}"] = score.oop
    return values


def flat_intervals(table: ScoreTable, prefix: str) -> dict[str, list[float]]:
    """The 95% interval `[low, high]` of every accuracy `flat_metrics` names (Wilson for the categories,
    the bootstrap for the per-class means), for those that are not None."""
    values: dict[str, list[float]] = {}
    for name, interval in (("imgt", table.per_class_interval_imgt), (prefix, table.per_class_interval_labels)):
        if interval is not None:
            values[f"per_class_{name}"] = list(interval)
    keys = {"imgt": "imgt", "labels": prefix, "both": "im_and_re", "oop": "oop"}
    for name in CATEGORIES:
        for kind, interval in table.categories[name].intervals.items():
            values[f"{keys[kind]}_{name}"] = list(interval)
    return values


def interval_method(table: ScoreTable) -> dict[str, Any]:
    """How the intervals were computed, so that anyone can recompute them."""
    return {
        "confidence": table.bootstrap["confidence"],
        "proportions": "wilson",
        "per_class_means": "percentile bootstrap over images, stratified by class",
        "resamples": table.bootstrap["resamples"],
        "seed": table.bootstrap["seed"],
    }


def breakdown_table(
    metrics: dict[str, Any], prefix: str, protocol: str, intervals: dict[str, list[float]] | None = None
) -> str:
    """The per-category table of one task, compact (accuracies in %, with their 95% intervals when
    given), as a run prints it."""
    label = {"regt": "ReGT", "real": "ReaL", "imgt": "ImGT"}.get(prefix, prefix)
    columns = [("images", "count_{}"), ("ImGT", "imgt_{}"), (label, prefix + "_{}"), ("Im∩Re", "im_and_re_{}")]
    if protocol != "ow":
        columns.append(("OOP", "oop_{}"))
    if protocol == "cwplus":
        columns += [("CW ImGT", "cw_imgt_{}"), (f"CW {label}", "cw_" + prefix + "_{}")]
    lines = ["| category | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for category in CATEGORIES:
        cells = []
        for name, key in columns:
            value = metrics.get(key.format(category))
            cells.append(
                str(value) if name == "images" else _with_interval(value, (intervals or {}).get(key.format(category)))
            )
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    per_class = [
        f"{title} {_with_interval(metrics.get(key), (intervals or {}).get(key))}"
        for title, key in (("ImGT", "per_class_imgt"), (label, f"per_class_{prefix}"))
    ]
    shares = ", ".join(f"{o} {100 * metrics[o]:.2f}%" for o in OUTCOMES if metrics.get(o))
    lines.append("per-class mean: " + ", ".join(per_class))
    return "\n".join(lines + ([f"answers: {shares}"] if shares else []))


def _with_interval(value: float | None, interval: list[float] | None) -> str:
    """`83.38 [81.2, 85.3]`: an accuracy in % and its 95% interval."""
    if value is None:
        return "–"
    return f"{100 * value:.2f}" + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")
