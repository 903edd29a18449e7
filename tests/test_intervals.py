"""Intervals and the paired test, each against an independent computation: scipy's Wilson interval and
binomial test, and bootstraps written out here with the same seed and the same draws."""

import random

import numpy as np
import pytest
from scipy import stats

from lmms_eval_imagenet_regt import EquivalenceSet, GroundTruth, ImageLabels, score_predictions
from lmms_eval_imagenet_regt.intervals import (
    mcnemar_exact,
    paired_difference_interval,
    per_class_mean_intervals,
    wilson,
)
from lmms_eval_imagenet_regt.labels.ground_truth import image_id_for_position
from lmms_eval_imagenet_regt.records import flat_intervals, flat_metrics
from tests.test_scoring import HAND, PREDICTIONS


def flat(intervals):
    return [bound for interval in intervals for bound in interval]


def scipy_wilson(k, n):
    interval = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return pytest.approx((interval.low, interval.high), abs=1e-12)


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (0, 19), (13, 19), (19, 19), (1, 3), (1102, 1243), (41234, 50000)]
)
def test_wilson_equals_scipy(k, n):
    assert wilson(k, n) == scipy_wilson(k, n)


def test_wilson_of_no_images_is_none_and_never_leaves_zero_to_one():
    assert wilson(0, 0) is None
    for n in (1, 2, 5, 30):
        for k in range(n + 1):
            low, high = wilson(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0


def test_every_category_accuracy_carries_the_wilson_interval_of_its_counts():
    """The hand counts of test_scoring: A: ImGT right on 4 of 9, ReGT on 8 of 9, both on 4; S+: 3 of 4."""
    table = score_predictions(PREDICTIONS, HAND, EquivalenceSet.load())
    a, s_plus = table.categories["A"].intervals, table.categories["S+"].intervals
    assert (a["imgt"], a["labels"], a["both"]) == (scipy_wilson(4, 9), scipy_wilson(8, 9), scipy_wilson(4, 9))
    assert s_plus["labels"] == scipy_wilson(3, 4)
    assert "oop" not in a  # no out-of-prompt flags were given
    metrics, intervals = flat_metrics(table, "regt"), flat_intervals(table, "regt")
    accuracies = {k for k, v in metrics.items() if v is not None and not k.startswith("count_")}
    assert set(intervals) == accuracies  # every accuracy reported has its interval, nothing else has one
    for name, (low, high) in intervals.items():
        assert low <= metrics[name] <= high


def independent_per_class_bootstrap(rows, seed, resamples):
    """Resample, class by class, as many images as the class has; mean of the class accuracies."""
    ordered = sorted(rows, key=lambda row: (row[1], row[0]))
    slot_sizes = np.array([sum(1 for r in ordered if r[1] == row[1]) for row in ordered])
    first_slot = {}
    for position, row in enumerate(ordered):
        first_slot.setdefault(row[1], position)
    rng = np.random.default_rng(seed)
    columns = len(rows[0][2])
    means = [[] for _ in range(columns)]
    for _ in range(resamples):
        draws = rng.integers(0, slot_sizes)
        right = {}
        for position, row in enumerate(ordered):
            picked = ordered[first_slot[row[1]] + int(draws[position])]
            right.setdefault(row[1], []).append(picked[2])
        for column in range(columns):
            means[column].append(
                sum(sum(v[column] for v in values) / len(values) for values in right.values()) / len(right)
            )
    return [tuple(np.percentile(m, [2.5, 97.5])) for m in means]


def test_per_class_mean_interval_equals_an_independent_bootstrap_with_the_same_seed():
    generator = random.Random(3)
    rows = [
        (
            f"ILSVRC2012_val_{i:08d}",
            generator.choice((3, 7, 7, 11, 42)),
            (generator.random() < 0.6, generator.random() < 0.8),
        )
        for i in range(1, 60)
    ]
    shuffled = rows[::-1]  # the order the rows come in does not matter
    assert flat(per_class_mean_intervals(shuffled, seed=5, resamples=200)) == pytest.approx(
        flat(independent_per_class_bootstrap(rows, seed=5, resamples=200)), abs=1e-12
    )
    assert per_class_mean_intervals([]) is None


def test_score_table_per_class_intervals_use_the_recorded_seed():
    table = score_predictions(PREDICTIONS, HAND, EquivalenceSet.load())
    rows = []
    # the hand verdicts of test_regt_convention_with_default_equivalences (ImGT, ReGT) per image
    hand = [(1, 1), (0, 1), (0, 1), (0, 1), (0, 0), (0, 1), (1, 1), (1, 1), (1, 1)]
    for position, (imgt, labels_right) in enumerate(hand):
        image = HAND[image_id_for_position(position)]
        rows.append((image.image_id, image.imgt, (bool(imgt), bool(labels_right))))
    expected = independent_per_class_bootstrap(rows, table.bootstrap["seed"], table.bootstrap["resamples"])
    got = [table.per_class_interval_imgt, table.per_class_interval_labels]
    assert flat(got) == pytest.approx(flat(expected), abs=1e-12)


def test_paired_interval_equals_an_independent_bootstrap_and_mcnemar_equals_binomtest():
    generator = random.Random(8)
    first = [generator.random() < 0.7 for _ in range(101)]
    second = [generator.random() < 0.6 for _ in range(101)]
    rng = np.random.default_rng(4)
    differences = []
    for _ in range(300):
        picked = rng.integers(0, 101, 101)
        differences.append(sum(first[i] - second[i] for i in picked) / 101)
    assert paired_difference_interval(first, second, seed=4, resamples=300) == pytest.approx(
        tuple(np.percentile(differences, [2.5, 97.5])), abs=1e-12
    )
    for only_first, only_second in [(0, 0), (1, 0), (3, 10), (10, 3), (5, 5), (40, 61), (0, 25)]:
        n = only_first + only_second
        expected = 1.0 if n == 0 else stats.binomtest(only_first, n, 0.5).pvalue
        assert mcnemar_exact(only_first, only_second) == pytest.approx(expected, abs=1e-12)


def test_an_image_with_no_label_under_the_real_convention_has_no_interval():
    truth = GroundTruth("t", {"ILSVRC2012_val_00000001": ImageLabels("ILSVRC2012_val_00000001", 1, frozenset())})
    table = score_predictions({"ILSVRC2012_val_00000001": 1}, truth, convention="real")
    assert table.categories["N"].intervals == {} and table.per_class_interval_imgt is None
