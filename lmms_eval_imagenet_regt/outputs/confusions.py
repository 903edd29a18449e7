"""Class confusions from a classifier's run: the hard distractors of the paper's confusion-based MC sets.

The paper draws MC distractors from the confusion matrix of EVA-02 on the validation set. A run of this
plugin's classifiers over the validation images (`timm_classifier` with
`eva02_large_patch14_448.mim_m38m_ft_in22k_in1k` reproduces the paper's choice) holds that matrix: each
record has the image's original label and the predicted class. An image counts one confusion
(original label, prediction) when its top-1 class is not its original label nor equivalent to it. With
the run's top-5 side file (`top5_path=`), every such class among the five counts once, so classes the
model rarely gets wrong still get partners.

The file written is the format the MC tasks read (`IMAGENET_REGT_CONFUSIONS`): a JSON list of
`[wnid_a, wnid_b, count]`, most frequent first.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..errors import InputError
from ..files import iter_jsonl, write_text
from ..labels.vocabulary import NUM_CLASSES, wordnet_ids
from .runs import TaskRun, read_samples

#: Protocols whose answers are free choices among all classes (MC answers pick among sampled options).
CONFUSION_PROTOCOLS = ("cw", "cwplus", "ow")


def _check_protocol(run: TaskRun) -> None:
    if run.config.protocol not in CONFUSION_PROTOCOLS:
        raise InputError(
            run.samples_path, f"protocol {run.config.protocol}: MC answers choose among sampled options, not classes"
        )


def read_top5(path: str | Path) -> dict[str, list[int]]:
    """A classifier's top-5 side file (`{"image_id", "top5", "scores"}` per line), by image id."""
    top5 = {}
    for line, row in iter_jsonl(path):
        classes = row.get("top5") if isinstance(row, dict) else None
        if not (
            isinstance(row, dict)
            and isinstance(row.get("image_id"), str)
            and isinstance(classes, list)
            and classes
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < NUM_CLASSES for c in classes)
        ):
            raise InputError(path, 'not {"image_id": str, "top5": [class indices 0..999]}', line=line)
        if top5.setdefault(row["image_id"], classes) != classes:  # two tasks of one run repeat an image
            raise InputError(path, "the same image with other top-5 classes", line=line, value=row["image_id"])
    return top5


def count_confusions(
    runs: list[TaskRun], top5: dict[str, list[int]] | None = None
) -> tuple[Counter[tuple[int, int]], int]:
    """(original label, confused class) → images, over the runs' images (with `top5`: its five classes
    instead of the top-1; it must hold every image), and how many images had no single predicted class
    (unanswered, failed, a name of two classes): counted, never a confusion. Equivalent classes are the
    same class, never a confusion."""
    counts: Counter[tuple[int, int]] = Counter()
    seen: set[str] = set()
    without_class = 0
    for run in runs:
        _check_protocol(run)
        same = run.config.equivalence_set
        for record in run.records or []:
            image_id, imgt = record["image_id"], record["imgt"]
            if image_id in seen:
                raise InputError(run.samples_path, "an image of an earlier run again", value=image_id)
            seen.add(image_id)
            if top5:
                if image_id not in top5:
                    raise InputError("--top5", "holds no top-5 classes for an image of the runs", value=image_id)
                guesses = top5[image_id]
            elif len(record["classes"]) == 1:
                guesses = record["classes"]
            else:
                without_class += 1
                continue
            truth = same.expand({imgt})
            for guess in dict.fromkeys(guesses):
                if guess not in truth:
                    counts[imgt, guess] += 1
    return counts, without_class


def write_confusions(counts: Counter[tuple[int, int]], out: str | Path) -> Path:
    """The confusion file the MC tasks read: `[[wnid, wnid, count], ...]`, most frequent first."""
    if not counts:
        raise InputError(out, "the runs hold no confusions (every answer right, or none answered)")
    wnids = wordnet_ids()
    rows = [[wnids[a], wnids[b], n] for (a, b), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    return write_text(out, "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")


def confusions_from_runs(samples: list[str | Path], out: str | Path, top5: list[str | Path] = ()) -> dict:
    """Read the runs (checked against their results), count, write; return a summary to print."""
    runs = [read_samples(path) for path in samples]
    merged: dict[str, list[int]] = {}
    for path in top5:
        for image_id, classes in read_top5(path).items():
            if merged.setdefault(image_id, classes) != classes:
                raise InputError(path, "an image of an earlier top-5 file with other classes", value=image_id)
    counts, without_class = count_confusions(runs, merged)
    write_confusions(counts, out)
    partners: dict[int, set[int]] = {}
    for a, b in counts:  # the MC tasks read the pairs both ways
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    return {
        "file": str(out),
        "images": sum(len(run.records or []) for run in runs),
        "without_class": without_class,
        "pairs": len(counts),
        "confusions": sum(counts.values()),
        "classes_with_partners": len(partners),
        "classes_with_3_partners": sum(len(others) >= 3 for others in partners.values()),
        "source": "top-5" if merged else "top-1",
    }
