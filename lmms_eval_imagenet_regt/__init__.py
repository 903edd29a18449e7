"""ImageNet-1k classification by multimodal LLMs, scored against ReGT multi-labels (Kisel et al. 2026).

Data flow: labels (vocabulary, ground truth, categories) → protocol (prompt, answer reading, mapping) →
scoring and records → lmms-eval tasks and models → outputs (datasets, submissions, leaderboard, review).
"""

from .errors import InputError
from .intervals import mean_interval
from .labels.categories import CATEGORIES, image_category
from .labels.equivalences import EquivalenceSet
from .labels.ground_truth import GroundTruth, ImageLabels, load_ground_truth, normalize_image_id
from .labels.vocabulary import ClassVocabulary
from .predictions import read_predictions, score_file
from .scoring import ScoreTable, judge, score_predictions

__version__ = "0.2.0"

__all__ = [
    "CATEGORIES",
    "ClassVocabulary",
    "EquivalenceSet",
    "GroundTruth",
    "ImageLabels",
    "InputError",
    "ScoreTable",
    "image_category",
    "judge",
    "load_ground_truth",
    "mean_interval",
    "normalize_image_id",
    "read_predictions",
    "score_file",
    "score_predictions",
]
