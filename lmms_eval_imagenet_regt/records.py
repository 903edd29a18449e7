"""Per-image records (answer + ground truth) and the metrics of a task computed from them.

One record per image is what an lmms-eval run logs in its samples file; the same function scores it during
the run (rank 0's aggregation) and afterwards (`imagenet-regt rescore`), so a re-score with the run's own
settings reproduces the run exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import InputError
from .files import iter_jsonl
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import GroundTruth, ImageLabels
from .protocol.mapping import map_answers
from .protocol.settings import ProtocolConfig, parse_answer, prompt_hash
from .scoring import CATEGORIES, ScoreTable, score_predictions

SUBSETS = tuple(c for c in CATEGORIES if c != "N")
#: The metrics every task reports (accuracies are fractions in [0, 1]).
COMMON_METRICS = (
    ("imgt_A", "regt_A", "im_and_re_A")
    + tuple(f"regt_{c}" for c in SUBSETS[1:])
    + tuple(f"imgt_{c}" for c in SUBSETS[1:])
    + ("imgt_N",)
    + tuple(f"count_{c}" for c in CATEGORIES)
    + ("per_class_imgt", "per_class_regt", "unanswered", "answer_length")
    + ("prompt_hash", "labels_hash", "world_size", "versions", "model_info")
)
OOP_METRICS = tuple(f"oop_{c}" for c in SUBSETS)
CW_FROM_CWPLUS_METRICS = ("cw_imgt_A", "cw_regt_A", "cw_im_and_re_A")
METRICS = {
    "ow": COMMON_METRICS,
    "mc": COMMON_METRICS + OOP_METRICS,
    "cw": COMMON_METRICS + OOP_METRICS,
    "cwplus": COMMON_METRICS + OOP_METRICS + CW_FROM_CWPLUS_METRICS,
}


def make_record(
    labels: ImageLabels, raw_answer: str, config: ProtocolConfig, config_key: str, options: list[int] | None
) -> dict[str, Any]:
    """Parse one answer against its image's prompt; keep everything a later re-score needs."""
    parsed = parse_answer(raw_answer, config, options)
    record = {
        "image_id": labels.image_id,
        "imgt": labels.imgt,
        "labels": sorted(labels.labels),
        "not_sure": labels.not_sure,
        "config": config_key,
        "raw_answer": raw_answer,
        "answer": parsed.answer,
        "classes": list(parsed.classes),
        "out_of_prompt": parsed.out_of_prompt,
        "needs_mapping": parsed.needs_mapping,
    }
    if options is not None:
        record["options"] = options
    return record


def records_ground_truth(records: Iterable[dict], name: str = "task dataset") -> GroundTruth:
    """The labels the records were scored against (those of the dataset the run read)."""
    images = {
        r["image_id"]: ImageLabels(r["image_id"], r["imgt"], frozenset(r["labels"]), r["not_sure"]) for r in records
    }
    return GroundTruth(name=name, images=images)


def final_predictions(records: list[dict], config: ProtocolConfig) -> dict[str, list[int]]:
    """Each image's predicted classes: the parsed ones, or the embedding mapping's for OW/CW+ answers."""
    to_map = [r["answer"] for r in records if r["needs_mapping"]]
    mapped = map_answers(to_map, config.encoder, config.vocabulary, config.templates) if to_map else {}
    return {
        r["image_id"]: [mapped[r["answer"]].class_index] if r["answer"] in mapped else r["classes"] for r in records
    }


def score_records(
    records: list[dict],
    config: ProtocolConfig,
    *,
    ground_truth: GroundTruth | None = None,
    equivalences: EquivalenceSet | None = None,
    convention: str = "regt",
    world_size: int = 1,
    model_info: str = "",
) -> dict[str, Any]:
    """All metrics of one task from its per-image records, mapping OW/CW+ answers as needed.

    Records are keyed by image id: several processes pad their shards with clones of requests, and a clone
    must not count twice. Without `ground_truth`, the labels carried by the records are used.
    """
    records = list({r["image_id"]: r for r in records}.values())
    if not records:
        raise InputError("records", "no per-image records to score")
    truth = ground_truth or records_ground_truth(records)
    equivalences = equivalences or EquivalenceSet.load()
    parsed = {r["image_id"]: r["classes"] for r in records}
    final = final_predictions(records, config)
    oop = {r["image_id"]: r["out_of_prompt"] for r in records} if config.protocol != "ow" else None
    table = score_predictions(final, truth, equivalences, convention=convention, out_of_prompt=oop)
    values = _flatten(table)
    scored = [image_id for image_id in final if image_id in truth]
    values["unanswered"] = sum(not final[i] for i in scored) / len(scored) if scored else None
    values["answer_length"] = sum(len(r["answer"]) for r in records) / len(records)
    if config.protocol == "cwplus":
        closed = score_predictions(parsed, truth, equivalences, convention=convention).categories["A"]
        values.update(cw_imgt_A=closed.imgt, cw_regt_A=closed.regt, cw_im_and_re_A=closed.both)
    packages = ("lmms-eval-imagenet-regt", "lmms-eval", "transformers", "torch", "sentence-transformers")
    values.update(
        prompt_hash=prompt_hash(config),
        labels_hash=truth.sha256,
        world_size=world_size,
        versions="; ".join(f"{p} {metadata.version(p)}" for p in packages),
        model_info=model_info,
    )
    return values


def _flatten(table: ScoreTable) -> dict[str, Any]:
    values: dict[str, Any] = {"per_class_imgt": table.per_class_mean_imgt, "per_class_regt": table.per_class_mean_regt}
    for name, score in table.categories.items():
        values.update(
            {
                f"imgt_{name}": score.imgt,
                f"regt_{name}": score.regt,
                f"im_and_re_{name}": score.both,
                f"oop_{name}": score.oop,
                f"count_{name}": score.count,
            }
        )
    return values


def read_run(samples_path: str | Path) -> tuple[str, list[dict], ProtocolConfig]:
    """Task name, per-image records and protocol settings of one lmms-eval samples file.

    The settings come from the results file written beside it (`<date>_results.json`, `configs.<task>`).
    """
    samples_path = Path(samples_path)
    stamp, _, task = samples_path.stem.partition("_samples_")
    results_path = samples_path.with_name(f"{stamp}_results.json")
    if not task or not results_path.is_file():
        raise InputError(samples_path, f"expected an lmms-eval samples file with {results_path.name} beside it")
    settings = json.loads(results_path.read_text(encoding="utf-8"))["configs"][task]["lmms_eval_specific_kwargs"]
    config = ProtocolConfig.from_kwargs(settings.get("default", settings))
    records = []
    for line, sample in iter_jsonl(samples_path):
        record = sample.get("regt_A") if isinstance(sample, dict) else None
        if not isinstance(record, dict) or "raw_answer" not in record:
            raise InputError(samples_path, "not a sample of an imagenet_regt/imagenet_real task", line=line)
        records.append(record)
    return task, records, config
