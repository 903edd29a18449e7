"""Multiple-choice option sets: the correct option(s) plus distractors, seeded per image and repeat.

Option sets of the paper: ImGT + random; ImGT + confusion(ImGT); ReGT + confusion(ReGT);
ImGT + ReGT + random; ImGT + ReGT + confusion(ImGT, ReGT). A distractor is never admissible for the image
(not an ImGT or ReGT label, nor equivalent to one), so exactly one or two options are correct.
Confusion-based distractors need a class-confusion file (`IMAGENET_REGT_CONFUSIONS`): the
google-research/imagenet-mistakes format `[[wnid_a, wnid_b, count], ...]`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections import defaultdict
from functools import cache
from pathlib import Path

from ..errors import InputError
from ..files import load_json
from ..labels.equivalences import EquivalenceSet
from ..labels.ground_truth import ImageLabels
from ..labels.vocabulary import NUM_CLASSES, wordnet_ids

OPTION_SETS = ("imgt_random", "imgt_conf", "regt_conf", "imgt_regt_random", "imgt_regt_conf")
DEFAULT_NUM_OPTIONS = 4
CONFUSIONS_ENV = "IMAGENET_REGT_CONFUSIONS"


@cache
def load_confusions(path: str) -> dict[int, tuple[int, ...]]:
    """Class → the classes it is confused with, most confused first (ties by index)."""
    wnid_index = {wnid: index for index, wnid in enumerate(wordnet_ids())}
    rows = load_json(path)
    if not isinstance(rows, list) or not rows:
        raise InputError(path, "a class-confusion file holds a non-empty list of [wnid, wnid, count]")
    counts: dict[int, dict[int, float]] = defaultdict(dict)
    for number, row in enumerate(rows, start=1):
        if not (
            isinstance(row, list)
            and len(row) == 3
            and all(isinstance(wnid, str) and wnid in wnid_index for wnid in row[:2])
            and isinstance(row[2], (int, float))
            and not isinstance(row[2], bool)
            and math.isfinite(row[2])
            and row[2] > 0
        ):
            raise InputError(path, "not [wnid, wnid, positive count]", entry=number, value=row)
        a, b = wnid_index[row[0]], wnid_index[row[1]]
        counts[a][b] = counts[a].get(b, 0) + float(row[2])
        counts[b][a] = counts[b].get(a, 0) + float(row[2])
    return {a: tuple(sorted(others, key=lambda b: (-others[b], b))) for a, others in counts.items()}


def confusions_path() -> str:
    """The class-confusion file the confusion-based option sets read (checked before a run starts)."""
    path = os.environ.get(CONFUSIONS_ENV)
    if not path:
        raise InputError(
            CONFUSIONS_ENV,
            "confusion-based option sets need a class-confusion file: set IMAGENET_REGT_CONFUSIONS to "
            "class_confusion_wnids.json from github.com/google-research/imagenet-mistakes",
        )
    return path


def confusions_source() -> dict:
    """What the results record about the confusion file: its name, the number of classes with partners, and
    a hash of the partner ranking it gives (what decides the options, whatever the file's layout)."""
    path = confusions_path()
    ranked = load_confusions(path)
    digest = hashlib.sha256(json.dumps(sorted(ranked.items())).encode()).hexdigest()[:16]
    return {"file": Path(path).name, "ranking_sha256": digest, "classes": len(ranked)}


def sample_options(
    record: ImageLabels,
    option_set: str,
    num_options: int,
    seed: int,
    equivalences: EquivalenceSet,
) -> list[int]:
    """The options shown for one image, in display order. Same inputs, same options."""
    rng = random.Random(f"{seed}:{record.image_id}:{option_set}:{num_options}")
    excluded = equivalences.expand({record.imgt} | set(record.labels))
    regt_extra = _own_labels_outside(record, equivalences)
    if option_set.startswith("imgt_regt"):
        correct = [record.imgt] + ([rng.choice(regt_extra)] if regt_extra else [])
    elif option_set == "regt_conf":
        correct = [rng.choice(sorted(record.labels))] if record.labels else [record.imgt]
    else:
        correct = [record.imgt]
    distractors: list[int] = []
    if option_set.endswith("conf"):
        confusions = load_confusions(confusions_path())
        ranked = _interleave([confusions.get(c, ()) for c in correct])
        distractors = [c for c in ranked if c not in excluded][: num_options - len(correct)]
    pool = [c for c in range(NUM_CLASSES) if c not in excluded and c not in distractors]
    distractors += rng.sample(pool, num_options - len(correct) - len(distractors))
    options = correct + distractors
    rng.shuffle(options)
    return options


def _own_labels_outside(record: ImageLabels, equivalences: EquivalenceSet) -> list[int]:
    """One of the image's own ReGT labels per equivalence group other than its ImGT label's, in group order:
    the option reads as the image was labelled ("notebook computer"), not as its group's first member."""
    own: dict[int, int] = {}
    for label in sorted(record.labels):
        own.setdefault(equivalences.canonical[label], label)
    return [own[group] for group in sorted(own) if group != equivalences.canonical[record.imgt]]


def _interleave(lists: list[tuple[int, ...]]) -> list[int]:
    """Round-robin merge without repeats, so two correct options share the confusion slots."""
    merged: list[int] = []
    for rank in range(max((len(x) for x in lists), default=0)):
        for ranked in lists:
            if rank < len(ranked) and ranked[rank] not in merged:
                merged.append(ranked[rank])
    return merged
