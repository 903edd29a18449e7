"""95% intervals on every accuracy, and the paired test that says whether two runs really differ.

- A proportion of images (accuracy in a category, Im∩Re, the OOP rate): the Wilson score interval. Unlike
  the normal approximation it stays inside [0, 1] and keeps its coverage for small counts and for
  accuracies near 0 or 1, which is where label categories live (an M− category of 19 images).
- A per-class mean (not a plain proportion): a percentile bootstrap over images, stratified by class so
  that every resample keeps each class's number of images; seeded, the seed and resample count recorded.
- Multiple-choice accuracy over R repeats with new options: the t-interval of the mean (the paper's).
- Two runs on the same images: a paired bootstrap over images for the accuracy difference, and McNemar's
  exact test on the discordant images (right in one run only).

The draws are specified so that anyone can repeat them: `numpy.random.default_rng(seed)`, one
`Generator.integers` call per resample, started afresh for every statistic.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

from .errors import InputError

CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0

Interval = tuple[float, float]


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson score interval of successes/trials (no continuity correction); None for no trials."""
    if trials == 0:
        return None
    z = _z(confidence)
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    # the bounds are exactly 0 and 1 at none and all right; rounding would leave them a hair inside
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == trials else centre + half)


def successes(accuracy: float, trials: int) -> int:
    """The count behind an accuracy (a fraction of `trials` images), as scoring computed it."""
    return round(accuracy * trials)


def percentile_interval(statistics: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    low, high = np.quantile(statistics, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def per_class_mean_intervals(
    rows: Sequence[tuple[str, int, Sequence[bool]]],
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> list[Interval] | None:
    """Bootstrap intervals of per-class mean accuracies, one per column of `rows` = (image id, class,
    right or wrong per column).

    Images are put in (class, image id) order; each resample draws, for every image slot, an image of the
    same class (`rng.integers(0, class_size_of_each_slot)`), so the classes and their sizes stay fixed and
    only which of their images count varies. The statistic is the mean over classes of the class accuracy.
    """
    if not rows:
        return None
    ordered = sorted(rows, key=lambda row: (row[1], row[0]))
    classes = np.array([row[1] for row in ordered])
    values = np.array([row[2] for row in ordered], dtype=float).reshape(len(ordered), -1)
    _, starts, sizes = np.unique(classes, return_index=True, return_counts=True)
    slot_start, slot_size = np.repeat(starts, sizes), np.repeat(sizes, sizes)
    rng = np.random.default_rng(seed)
    means = np.empty((resamples, values.shape[1]))
    for index in range(resamples):
        picked = values[slot_start + rng.integers(0, slot_size)]
        means[index] = (np.add.reduceat(picked, starts, axis=0) / sizes[:, None]).mean(axis=0)
    return [percentile_interval(means[:, column], confidence) for column in range(values.shape[1])]


def paired_difference_interval(
    first: Sequence[bool],
    second: Sequence[bool],
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Interval | None:
    """Bootstrap interval of mean(first) − mean(second) over the same images, resampled together
    (`rng.integers(0, n, n)` per resample)."""
    n = len(first)
    if n == 0:
        return None
    difference = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.array([difference[rng.integers(0, n, n)].mean() for _ in range(resamples)])
    return percentile_interval(means, confidence)


def mcnemar_exact(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value: under no difference, the discordant images split like fair coin
    flips, so p = 2·P(Binomial(b + c, ½) ≤ min(b, c)), at most 1."""
    from scipy.stats import binom

    discordant = first_only + second_only
    if discordant == 0:
        return 1.0
    return min(1.0, 2 * float(binom.cdf(min(first_only, second_only), discordant, 0.5)))


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Mean and half-width of the t-interval over R repeats: t(1−α/2, R−1)·s/√R, s with ddof = 1.

    This is how the paper reports multiple-choice accuracy over R = 31 option draws.
    """
    from scipy.stats import t

    if len(values) < 2:
        raise InputError("repeats", "a confidence interval needs at least two repeats", value=len(values))
    half_width = t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return statistics.fmean(values), float(half_width)
