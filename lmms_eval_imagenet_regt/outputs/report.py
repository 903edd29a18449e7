"""Rendering a score table for people (markdown) and programs (JSON)."""

from __future__ import annotations

import json

from ..records import breakdown_table, flat_intervals, flat_metrics, interval_method
from ..scoring import ScoreTable


def to_markdown(table: ScoreTable) -> str:
    """The paper's Table 3 layout, one row per label category, accuracies in percent."""
    with_oop = any(score.oop is not None for score in table.categories.values())
    metrics, intervals = flat_metrics(table, table.label_set), flat_intervals(table, table.label_set)
    lines = [breakdown_table(metrics, table.label_set, "cw" if with_oop else "ow", intervals)]
    method = interval_method(table)
    lines += [
        "",
        f"- ground truth: {table.ground_truth}, label set {table.label_set} (sha256 {table.ground_truth_sha256}), "
        f"convention: {table.convention}, equivalences: {table.equivalences}",
        f"- 95% intervals: Wilson for each category; per-class means by {method['per_class_means']} "
        f"({method['resamples']} resamples, seed {method['seed']})",
        f"- images scored: {table.images_scored}; unanswered (no class parsed or mapped): {table.unanswered}; "
        f"ground-truth images without a prediction: {table.missing}; "
        f"predictions outside the ground truth: {table.outside_ground_truth}",
    ]
    return "\n".join(lines)


def to_json(table: ScoreTable, **extra: object) -> str:
    return json.dumps({**table.to_dict(), **extra}, indent=2)
