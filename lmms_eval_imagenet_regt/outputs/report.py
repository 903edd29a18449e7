"""Rendering a score table for people (markdown) and programs (JSON)."""

from __future__ import annotations

import json

from ..scoring import CATEGORIES, ScoreTable


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def to_markdown(table: ScoreTable) -> str:
    """The paper's Table 3 layout, one row per label category, accuracies in percent."""
    with_oop = any(score.oop is not None for score in table.categories.values())
    header = ["category", "images", "ImGT", "ReGT", "Im∩Re"] + (["OOP"] if with_oop else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in CATEGORIES:
        score = table.categories[name]
        cells = [name, str(score.count), _percent(score.imgt), _percent(score.regt), _percent(score.both)]
        cells += [_percent(score.oop)] if with_oop else []
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"- ground truth: {table.ground_truth} (sha256 {table.ground_truth_sha256[:16]}), "
        f"convention: {table.convention}, equivalences: {table.equivalences}",
        f"- per-class mean accuracy: ImGT {_percent(table.per_class_mean_imgt)}, "
        f"ReGT {_percent(table.per_class_mean_regt)}",
        f"- images scored: {table.images_scored}; unanswered (no class parsed or mapped): {table.unanswered}; "
        f"ground-truth images without a prediction: {table.missing}; "
        f"predictions outside the ground truth: {table.outside_ground_truth}",
    ]
    return "\n".join(lines)


def to_json(table: ScoreTable, **extra: object) -> str:
    return json.dumps({**table.to_dict(), **extra}, indent=2)
