"""Leaderboard ranks: only among rows measured alike, ≈ where the intervals cannot tell a row from the leader."""

from __future__ import annotations

import pytest

from lmms_eval_imagenet_regt.outputs.leaderboard import COLUMNS, Rank, Row, group_names, headers, ranks, title


def row(name: str, right: int, images: int = 100, images_hash: str = "ids-1", **fields) -> Row:
    """A complete ReaL row whose ImGT and ReaL A are both `right` of `images`; the other columns empty."""
    values = (100 * right / images, 100 * right / images) + (None,) * (len(COLUMNS) - 2)
    counts = (images, images) + (0,) * (len(COLUMNS) - 2)
    return Row(
        name,
        "imagenet_real_cw",
        values,
        counts,
        "real",
        images,
        labels_hash="real-1",
        images_hash=images_hash,
        **fields,
    )


def test_wilson_intervals_of_rows_are_the_hand_values():
    # z = 1.96: 80/100 → 0.78891 ± 0.07773; 75/100 → 0.74075 ± 0.08380; 50/100 → 0.5 ± 0.09617
    for right, (low, high) in ((80, (71.12, 86.66)), (75, (65.70, 82.45)), (50, (40.38, 59.62))):
        interval = row("m", right).interval(0)
        assert interval == pytest.approx((low, high), abs=0.01)


def test_ranks_stay_in_their_group_and_mark_rows_the_data_cannot_separate():
    rows = [
        row("leader", 80),
        row("close", 75),  # [65.7, 82.5] overlaps the leader's [71.1, 86.7]: #2≈
        row("far", 50),  # [40.4, 59.6] lies below 71.1: a plain #3
        row("other images", 60, images_hash="ids-2"),  # alone in its group: #1, whatever the others score
        row("few", 19, images=20, images_hash="ids-3"),  # 20 < 30 images: greyed, no rank
        row("partial", 99, partial="covers 0.2% of the label set's 50000 images"),  # never ranked
    ]
    table = ranks(rows)
    assert [r[0] for r in table] == [Rank(1, True), Rank(2, False), Rank(3, True), Rank(1, True), None, None]
    assert [r[-1] for r in table] == [Rank(1, True), Rank(1, True), Rank(1, True), Rank(1, True), None, None]
    assert list(group_names(rows).values()) == ["G1", "G2", "G3"]
    assert title(rows) == "ImageNet-1k with ReaL labels" and headers(rows)[1] == "ReaL A"
