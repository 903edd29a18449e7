"""Scoring: predictions → the paper's table (ImGT and multi-label accuracy per label category, Im∩Re, OOP).

A prediction is a set of class indices: usually one, several when the answer is a name shared by several
classes ("sunglasses" is 836 and 837), empty when nothing could be read or mapped ("none", always wrong).
A prediction is correct when it shares a class with the admissible set L* (labels plus their equivalents).
Two conventions for images with no label: `regt` counts them correct (the paper), `real` leaves them out
(ReaL, timm). `judge` decides one image; every metric, live or re-scored, is built from it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from .errors import InputError
from .intervals import CONFIDENCE, RESAMPLES, SEED, Interval, per_class_mean_intervals, wilson
from .labels.categories import CATEGORIES, PARTS, category_of
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import GroundTruth, ImageLabels
from .labels.vocabulary import NUM_CLASSES

CONVENTIONS = ("regt", "real")
Prediction = frozenset[int]


def as_prediction(value: int | Iterable[int] | None, image_id: str = "prediction") -> Prediction:
    """Normalise `65`, `[836, 837]` or `None` to a prediction set, rejecting indices outside 0..999."""
    classes = () if value is None else (value,) if isinstance(value, int) else tuple(value)
    for index in classes:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_CLASSES:
            raise InputError(image_id, "predicted class index outside 0..999", value=index)
    return frozenset(classes)


@dataclass(frozen=True)
class Judgement:
    """One image: its label category and whether the prediction is right under ImGT and under the labels."""

    category: str
    imgt: bool
    labels: bool


def judge(record: ImageLabels, predicted: Iterable[int], equivalences: EquivalenceSet) -> Judgement:
    """Compare equivalence groups: the same as testing the prediction against the admissible set L*.
    An image with no label (N) counts as right under the labels (the `regt` convention)."""
    label_groups = equivalences.collapse(record.labels)
    imgt_group = equivalences.canonical[record.imgt]
    predicted_groups = equivalences.collapse(predicted)
    category = category_of(label_groups, imgt_group)
    return Judgement(
        category, imgt_group in predicted_groups, category == "N" or not label_groups.isdisjoint(predicted_groups)
    )


@dataclass(frozen=True)
class CategoryScore:
    """Accuracies are fractions in [0, 1]; None when the category has no scored image."""

    count: int
    imgt: float | None
    labels: float | None
    both: float | None
    oop: float | None = None
    #: how many of the category's answers ended in each outcome (parsed, mapped, unanswered, ...)
    outcomes: dict[str, int] = field(default_factory=dict)
    #: 95% Wilson interval of each accuracy above (imgt, labels, both, oop) that is not None
    intervals: dict[str, Interval] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreTable:
    convention: str
    ground_truth: str
    label_set: str
    ground_truth_sha256: str
    equivalences: str
    equivalences_sha256: str
    categories: dict[str, CategoryScore]
    per_class_mean_imgt: float | None
    per_class_mean_labels: float | None
    #: bootstrap intervals of the two per-class means (None when nothing was scored)
    per_class_interval_imgt: Interval | None
    per_class_interval_labels: Interval | None
    #: images in A (scored); images with an empty set are not in A under the `real` convention.
    images_scored: int
    #: scored images with no predicted class (unread, unmapped, empty, truncated or failed answers).
    unanswered: int
    #: ground-truth images with no prediction, and predictions for images outside the ground truth.
    missing: int
    outside_ground_truth: int
    #: how the per-class intervals were drawn (the proportions' intervals are Wilson's, no draws)
    bootstrap: dict = field(default_factory=lambda: {"resamples": RESAMPLES, "seed": SEED, "confidence": CONFIDENCE})

    def to_dict(self) -> dict:
        return asdict(self)


def score_predictions(
    predictions: Mapping[str, int | Iterable[int] | None],
    ground_truth: GroundTruth,
    equivalences: EquivalenceSet | None = None,
    convention: str = "regt",
    out_of_prompt: Mapping[str, bool] | None = None,
    outcomes: Mapping[str, str] | None = None,
) -> ScoreTable:
    """Score predictions keyed by image id against a ground truth; the one entry point for all metrics.

    Only images present in both are scored; the others are counted (`missing`, `outside_ground_truth`).
    `out_of_prompt` flags (closed-world and MC answers that named no candidate) add the OOP rate;
    `outcomes` (one per image) are counted per category.
    """
    if convention not in CONVENTIONS:
        raise InputError("convention", f"must be one of {', '.join(CONVENTIONS)}", value=convention)
    equivalences = equivalences or EquivalenceSet.empty()
    per_category: dict[str, list[tuple[bool, bool, bool, str | None]]] = defaultdict(list)
    per_class: dict[int, list[Judgement]] = defaultdict(list)
    per_image: list[tuple[str, int, tuple[bool, bool]]] = []
    unanswered = scored = 0
    for image_id, value in predictions.items():
        if image_id not in ground_truth:
            continue
        scored += 1
        predicted = as_prediction(value, image_id)
        verdict = judge(ground_truth[image_id], predicted, equivalences)
        oop = bool(_given(out_of_prompt, image_id, "out-of-prompt flags")) if out_of_prompt is not None else False
        outcome = _given(outcomes, image_id, "outcomes") if outcomes is not None else None
        per_category[verdict.category].append((verdict.imgt, verdict.labels, oop, outcome))
        if verdict.category == "N" and convention == "real":
            continue
        unanswered += not predicted
        per_class[ground_truth[image_id].imgt].append(verdict)
        per_image.append((image_id, ground_truth[image_id].imgt, (verdict.imgt, verdict.labels)))
    parts = category_parts(convention)
    categories = {}
    for name in CATEGORIES:
        rows = [row for part in parts.get(name, (name,)) for row in per_category[part]]
        excluded = name == "N" and convention == "real"
        categories[name] = _category_score(rows, out_of_prompt is not None, excluded)
    per_class_intervals = per_class_mean_intervals(per_image) or [None, None]
    return ScoreTable(
        convention=convention,
        ground_truth=ground_truth.name,
        label_set=ground_truth.label_set,
        ground_truth_sha256=ground_truth.set_sha256,
        equivalences=equivalences.source,
        equivalences_sha256=equivalences.sha256,
        categories=categories,
        per_class_mean_imgt=_mean(_mean([v.imgt for v in rows]) for rows in per_class.values()),
        per_class_mean_labels=_mean(_mean([v.labels for v in rows]) for rows in per_class.values()),
        per_class_interval_imgt=per_class_intervals[0],
        per_class_interval_labels=per_class_intervals[1],
        images_scored=categories["A"].count,
        unanswered=unanswered,
        missing=len(ground_truth) - scored,
        outside_ground_truth=len(predictions) - scored,
    )


def _given(values: Mapping[str, object], image_id: str, what: str) -> object:
    if image_id not in values:
        raise InputError(image_id, f"{what} were given but none for this image")
    return values[image_id]


def category_parts(convention: str) -> dict[str, tuple[str, ...]]:
    """The leaf categories each reported category sums; under `real`, A leaves out the no-label images (N)."""
    return {**PARTS, "A": PARTS["A"] if convention == "regt" else PARTS["A"][:-1]}


def _category_score(rows: list[tuple[bool, bool, bool, str | None]], with_oop: bool, excluded: bool) -> CategoryScore:
    outcomes = dict(Counter(row[3] for row in rows if row[3] is not None))
    if excluded or not rows:
        return CategoryScore(count=len(rows), imgt=None, labels=None, both=None, oop=None, outcomes=outcomes)
    right = {
        "imgt": sum(r[0] for r in rows),
        "labels": sum(r[1] for r in rows),
        "both": sum(r[0] and r[1] for r in rows),
        **({"oop": sum(r[2] for r in rows)} if with_oop else {}),
    }
    return CategoryScore(
        count=len(rows),
        imgt=right["imgt"] / len(rows),
        labels=right["labels"] / len(rows),
        both=right["both"] / len(rows),
        oop=right["oop"] / len(rows) if with_oop else None,
        outcomes=outcomes,
        intervals={name: wilson(count, len(rows)) for name, count in right.items()},
    )


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None
