"""Reading a predictions file: JSONL lines keyed by image id, with a class index or a class name.

    {"image_id": "ILSVRC2012_val_00000001", "prediction": 65}
    {"image_id": "ILSVRC2012_val_00000002", "prediction_name": "sea snake"}
    {"image_id": "ILSVRC2012_val_00000003", "prediction": null}
    {"image_id": "ILSVRC2012_val_00000004", "prediction": [836, 837]}

A prediction is a class index, a class name, or the classes of one duplicate name ("sunglasses" is 836
and 837): anything else — a longer list, a number written as text, 65.0 — is an error naming the file and
line. A name is matched to the chosen name set by the closed-world rule (lower-case, trim); a name that
matches no class becomes a "none" prediction and is counted, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .files import iter_jsonl
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import load_ground_truth, normalize_image_id
from .labels.vocabulary import NUM_CLASSES, ClassVocabulary
from .scoring import Prediction, ScoreTable, score_predictions

_KEYS = {"image_id", "prediction", "prediction_name"}
_KINDS = "must be a class index, a class name, or the classes of one duplicate name"


@dataclass(frozen=True)
class PredictionFile:
    predictions: dict[str, Prediction]
    #: lines whose `prediction_name` matched no class name (scored as "none").
    unmatched_names: int


def read_predictions(path: str | Path, vocabulary: ClassVocabulary) -> PredictionFile:
    predictions: dict[str, Prediction] = {}
    unmatched = 0
    duplicates = {classes for classes in vocabulary.name_classes.values() if len(classes) > 1}
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict) or "image_id" not in row:
            raise InputError(path, "a line needs an 'image_id'", line=line, value=row)
        unknown = sorted(set(row) - _KEYS)
        if unknown:
            raise InputError(path, f"unknown field {unknown[0]!r} (a line holds {', '.join(sorted(_KEYS))})", line=line)
        image_id = normalize_image_id(row["image_id"], path, line=line)
        if image_id in predictions:
            raise InputError(path, "duplicate image id", line=line, value=image_id)
        if "prediction" in row and "prediction_name" in row:
            raise InputError(path, "a line has 'prediction' or 'prediction_name', not both", line=line)
        if "prediction" in row:
            predictions[image_id] = _prediction(row["prediction"], duplicates, path, line)
        elif "prediction_name" in row:
            name = row["prediction_name"]
            if name is not None and not isinstance(name, str):
                raise InputError(path, "'prediction_name' must be a string or null", line=line, value=name)
            classes = vocabulary.indices_for(name) if name else frozenset()
            unmatched += bool(name) and not classes
            predictions[image_id] = classes
        else:
            raise InputError(path, "a line needs 'prediction' or 'prediction_name'", line=line)
    if not predictions:
        raise InputError(path, "no predictions in the file")
    return PredictionFile(predictions, unmatched)


def _prediction(value: object, duplicates: set[frozenset[int]], path: str | Path, line: int) -> Prediction:
    """A class index, null, or the classes of one duplicate name; nothing else."""
    if value is None:
        return frozenset()
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < NUM_CLASSES:
            raise InputError(path, "'prediction': class index outside 0..999", line=line, value=value)
        return frozenset({value})
    integers = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if integers and frozenset(value) in duplicates and len(value) == len(set(value)):
        return frozenset(value)
    raise InputError(path, f"'prediction' {_KINDS}", line=line, value=value)


def score_file(
    path: str | Path,
    ground_truth: str = "regt",
    *,
    convention: str = "regt",
    equivalences: str = "default",
    names: str = "clean",
) -> tuple[ScoreTable, PredictionFile]:
    """Score a predictions file: what `imagenet-regt score` prints, as objects.

    `ground_truth`, `equivalences` and `names` take what `load_ground_truth`, `EquivalenceSet.load` and
    `ClassVocabulary.load` take. Returns the table and the parsed file (for its unmatched-name count).
    """
    parsed = read_predictions(path, ClassVocabulary.load(names))
    table = score_predictions(
        parsed.predictions,
        load_ground_truth(ground_truth),
        EquivalenceSet.load(equivalences),
        convention=convention,
    )
    return table, parsed
