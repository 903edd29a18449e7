"""Scoring: predictions → the paper's table (ImGT and ReGT accuracy per label category, Im∩Re, OOP rate).

A prediction is a set of class indices: usually one, several when the answer is a name shared by several
classes ("sunglasses" is 836 and 837), empty when nothing could be parsed or mapped ("none", always
wrong). A prediction is correct when it shares a class with the admissible set L* (labels plus their
equivalents). Two conventions for images with no label: `regt` counts them correct (the paper), `real`
leaves them out (ReaL, timm).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from .errors import InputError
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import GroundTruth, ImageLabels
from .labels.vocabulary import NUM_CLASSES

CATEGORIES = ("A", "S", "S+", "S-", "M", "M+", "M-", "N")
#: The categories every image falls in exactly one of.
LEAF_CATEGORIES = ("S+", "S-", "M+", "M-", "N")
CONVENTIONS = ("regt", "real")
Prediction = frozenset[int]


def as_prediction(value: int | Iterable[int] | None, image_id: str = "prediction") -> Prediction:
    """Normalise `65`, `[836, 837]` or `None` to a prediction set, rejecting indices outside 0..999."""
    classes = () if value is None else (value,) if isinstance(value, int) else tuple(value)
    for index in classes:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_CLASSES:
            raise InputError(image_id, "predicted class index outside 0..999", value=index)
    return frozenset(classes)


def image_category(record: ImageLabels, equivalences: EquivalenceSet) -> str:
    """N, S+, S−, M+ or M− (written S-, M-), after collapsing equivalent labels into one."""
    return _category(equivalences.collapse(record.labels), equivalences.canonical[record.imgt])


def _category(label_groups: frozenset[int], imgt_group: int) -> str:
    if not label_groups:
        return "N"
    return ("S" if len(label_groups) == 1 else "M") + ("+" if imgt_group in label_groups else "-")


@dataclass(frozen=True)
class CategoryScore:
    """Accuracies are fractions in [0, 1]; None when the category has no scored image."""

    count: int
    imgt: float | None
    regt: float | None
    both: float | None
    oop: float | None = None


@dataclass(frozen=True)
class ScoreTable:
    convention: str
    ground_truth: str
    ground_truth_sha256: str
    equivalences: str
    equivalences_sha256: str
    categories: dict[str, CategoryScore]
    per_class_mean_imgt: float | None
    per_class_mean_regt: float | None
    #: images in A (scored); images with an empty set are not in A under the `real` convention.
    images_scored: int
    #: scored images whose prediction is "none" (unparsed or unmapped answers).
    unanswered: int
    #: ground-truth images with no prediction, and predictions for images outside the ground truth.
    missing: int
    outside_ground_truth: int

    def to_dict(self) -> dict:
        return asdict(self)


def score_predictions(
    predictions: Mapping[str, int | Iterable[int] | None],
    ground_truth: GroundTruth,
    equivalences: EquivalenceSet | None = None,
    convention: str = "regt",
    out_of_prompt: Mapping[str, bool] | None = None,
) -> ScoreTable:
    """Score predictions keyed by image id against a ground truth; the one entry point for all metrics.

    Only images present in both are scored; the others are counted (`missing`, `outside_ground_truth`).
    `out_of_prompt` flags (closed-world answers that named no class of the prompt) add the OOP rate.
    """
    if convention not in CONVENTIONS:
        raise InputError("convention", f"must be one of {', '.join(CONVENTIONS)}", value=convention)
    equivalences = equivalences or EquivalenceSet.empty()
    per_category: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    per_class: dict[int, list[tuple[bool, bool]]] = defaultdict(list)
    unanswered = 0
    for image_id, value in predictions.items():
        if image_id not in ground_truth:
            continue
        record = ground_truth[image_id]
        predicted = as_prediction(value, image_id)
        # compare equivalence groups: the same as testing the prediction against the admissible set L*
        label_groups = equivalences.collapse(record.labels)
        imgt_group = equivalences.canonical[record.imgt]
        predicted_groups = equivalences.collapse(predicted)
        category = _category(label_groups, imgt_group)
        imgt_ok = imgt_group in predicted_groups
        regt_ok = category == "N" or not label_groups.isdisjoint(predicted_groups)
        oop = _oop_flag(out_of_prompt, image_id)
        per_category[category].append((imgt_ok, regt_ok, oop))
        if category == "N" and convention == "real":
            continue
        unanswered += not predicted
        per_class[record.imgt].append((imgt_ok, regt_ok))

    groups = {
        "S": ("S+", "S-"),
        "M": ("M+", "M-"),
        "A": ("S+", "S-", "M+", "M-") + (("N",) if convention == "regt" else ()),
    }
    categories = {}
    for name in CATEGORIES:
        rows = [row for part in groups.get(name, (name,)) for row in per_category[part]]
        excluded = name == "N" and convention == "real"
        categories[name] = _category_score(rows, out_of_prompt is not None, excluded)
    scored_ids = sum(1 for image_id in predictions if image_id in ground_truth)
    return ScoreTable(
        convention=convention,
        ground_truth=ground_truth.name,
        ground_truth_sha256=ground_truth.sha256,
        equivalences=equivalences.source,
        equivalences_sha256=equivalences.sha256,
        categories=categories,
        per_class_mean_imgt=_mean(_mean([r[0] for r in rows]) for rows in per_class.values()),
        per_class_mean_regt=_mean(_mean([r[1] for r in rows]) for rows in per_class.values()),
        images_scored=categories["A"].count,
        unanswered=unanswered,
        missing=len(ground_truth) - scored_ids,
        outside_ground_truth=len(predictions) - scored_ids,
    )


def _oop_flag(out_of_prompt: Mapping[str, bool] | None, image_id: str) -> bool:
    if out_of_prompt is None:
        return False
    if image_id not in out_of_prompt:
        raise InputError(image_id, "out-of-prompt flags were given but none for this image")
    return bool(out_of_prompt[image_id])


def _category_score(rows: list[tuple[bool, bool, bool]], with_oop: bool, excluded: bool) -> CategoryScore:
    if excluded or not rows:
        return CategoryScore(count=len(rows), imgt=None, regt=None, both=None, oop=None)
    return CategoryScore(
        count=len(rows),
        imgt=_mean(r[0] for r in rows),
        regt=_mean(r[1] for r in rows),
        both=_mean(r[0] and r[1] for r in rows),
        oop=_mean(r[2] for r in rows) if with_oop else None,
    )


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the t-interval over R repeats: t(1−α/2, R−1)·s/√R, s with ddof = 1.

    This is how the paper reports multiple-choice accuracy over R = 31 option draws.
    """
    from scipy.stats import t

    if len(values) < 2:
        raise InputError("repeats", "a confidence interval needs at least two repeats", value=len(values))
    half_width = t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return statistics.fmean(values), float(half_width)
