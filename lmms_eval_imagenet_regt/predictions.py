"""Reading a predictions file: JSONL lines keyed by image id, with a class index or a class name.

    {"image_id": "ILSVRC2012_val_00000001", "prediction": 65}
    {"image_id": "ILSVRC2012_val_00000002", "prediction_name": "sea snake"}
    {"image_id": "ILSVRC2012_val_00000003", "prediction": null}

A name is matched to the chosen name set by the closed-world rule (lower-case, trim); a name that matches
no class becomes a "none" prediction and is counted, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .files import iter_jsonl
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import load_ground_truth, normalize_image_id
from .labels.vocabulary import ClassVocabulary
from .scoring import Prediction, ScoreTable, as_prediction, score_predictions


@dataclass(frozen=True)
class PredictionFile:
    predictions: dict[str, Prediction]
    #: lines whose `prediction_name` matched no class name (scored as "none").
    unmatched_names: int


def read_predictions(path: str | Path, vocabulary: ClassVocabulary) -> PredictionFile:
    predictions: dict[str, Prediction] = {}
    unmatched = 0
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict) or "image_id" not in row:
            raise InputError(path, "a line needs an 'image_id'", line=line, value=row)
        image_id = normalize_image_id(row["image_id"], path, line=line)
        if image_id in predictions:
            raise InputError(path, "duplicate image id", line=line, value=image_id)
        if "prediction" in row:
            try:
                predictions[image_id] = as_prediction(row["prediction"], image_id)
            except InputError as error:
                raise InputError(path, str(error), line=line) from None
        elif "prediction_name" in row:
            name = row["prediction_name"]
            if name is not None and not isinstance(name, str):
                raise InputError(path, "'prediction_name' must be a string or null", line=line, value=name)
            classes = vocabulary.indices_for(name) if name else frozenset()
            unmatched += bool(name) and not classes
            predictions[image_id] = classes
        else:
            raise InputError(path, "a line needs 'prediction' or 'prediction_name'", line=line)
    return PredictionFile(predictions, unmatched)


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
