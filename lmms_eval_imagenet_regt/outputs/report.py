"""Rendering a score table for people (markdown) and programs (JSON)."""

from __future__ import annotations

import json

from ..records import breakdown_table, flat_metrics
from ..scoring import ScoreTable


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def to_markdown(table: ScoreTable) -> str:
    """The paper's Table 3 layout, one row per label category, accuracies in percent."""
    with_oop = any(score.oop is not None for score in table.categories.values())
    lines = [breakdown_table(flat_metrics(table, table.label_set), table.label_set, "cw" if with_oop else "ow")]
    lines += [
        "",
        f"- ground truth: {table.ground_truth}, label set {table.label_set} (sha256 {table.ground_truth_sha256}), "
        f"convention: {table.convention}, equivalences: {table.equivalences}",
        f"- per-class mean accuracy: ImGT {_percent(table.per_class_mean_imgt)}, "
        f"{table.label_set} {_percent(table.per_class_mean_labels)}",
        f"- images scored: {table.images_scored}; unanswered (no class parsed or mapped): {table.unanswered}; "
        f"ground-truth images without a prediction: {table.missing}; "
        f"predictions outside the ground truth: {table.outside_ground_truth}",
    ]
    return "\n".join(lines)


def to_json(table: ScoreTable, **extra: object) -> str:
    return json.dumps({**table.to_dict(), **extra}, indent=2)
