"""ImageNet-1k classification by multimodal LLMs, scored against ReGT multi-labels (Kisel et al. 2026).

Data flow: class vocabulary → ground truth → protocol (prompt, answer parsing) → mapping → scoring →
reporting; each step is one module of this package.
"""

from .errors import InputError
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import GroundTruth, ImageLabels, load_ground_truth, normalize_image_id
from .labels.vocabulary import ClassVocabulary
from .predictions import read_predictions, score_file
from .scoring import CATEGORIES, ScoreTable, image_category, mean_interval, score_predictions

__version__ = "0.1.0"

__all__ = [
    "CATEGORIES",
    "ClassVocabulary",
    "EquivalenceSet",
    "GroundTruth",
    "ImageLabels",
    "InputError",
    "ScoreTable",
    "image_category",
    "load_ground_truth",
    "mean_interval",
    "normalize_image_id",
    "read_predictions",
    "score_file",
    "score_predictions",
]
