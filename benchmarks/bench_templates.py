"""Which class-name templates map answers best? Mapping accuracy of each template set on real answers.

    python benchmarks/bench_templates.py [--encoder sentence-transformers/all-MiniLM-L6-v2]

No MLLM answers are public for the shared images, so the answers are the other names ImageNet itself gives
each image's original class (`../shared/data/imagenet_val_1300/labels.csv`, 1,300 images): its WordNet
lemmas and open_clip's class name wherever they differ from the paper's clean name (what an MLLM says when
it names the object), and its WordNet definition (what a model says when it describes the object instead).
An answer is mapped correctly when the nearest class is its image's class or one the shipped equivalence
set joins with it. For each set: the time to build its class matrix on this machine (cold cache), its
accuracy per answer kind, and answers gained and lost against the single template with the exact McNemar p.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import open_clip
from scipy.stats import binomtest
from timm.data import ImageNetInfo

from lmms_eval_imagenet_regt import ClassVocabulary
from lmms_eval_imagenet_regt.labels.equivalences import EquivalenceSet
from lmms_eval_imagenet_regt.protocol.mapping import DEFAULT_ENCODER, TEMPLATE_SETS, class_matrix, get_encoder

LABELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "imagenet_val_1300" / "labels.csv"


def answers_by_kind(vocabulary: ClassVocabulary) -> dict[str, list[tuple[str, int]]]:
    """(answer, class of its image) for every shared image, by kind of answer."""
    info = ImageNetInfo()
    with open(LABELS, newline="") as handle:
        labels = [int(row["imgt_label"]) for row in csv.DictReader(handle)]

    def other_names(names: list[str], label: int) -> list[tuple[str, int]]:
        return [(name, label) for name in names if name.lower() != vocabulary.names[label].lower()]

    kinds: dict[str, list[tuple[str, int]]] = {"name": [], "definition": []}
    for label in labels:
        lemmas = info.index_to_description(label).split(", ")
        kinds["name"] += other_names([*lemmas, open_clip.IMAGENET_CLASSNAMES[label]], label)
        kinds["definition"].append((info.index_to_description(label, detailed=True).split(": ", 1)[1], label))
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", default=DEFAULT_ENCODER)
    args = parser.parse_args()
    if not LABELS.is_file():
        raise SystemExit(f"needs the shared test data: {LABELS} not found")
    vocabulary = ClassVocabulary.load()
    same = EquivalenceSet.load()
    kinds = answers_by_kind(vocabulary)
    encoder = get_encoder(args.encoder)
    distinct = {kind: sorted({answer for answer, _ in pairs}) for kind, pairs in kinds.items()}
    encoded = {kind: encoder.encode(answers) for kind, answers in distinct.items()}
    correct: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["IMAGENET_REGT_CACHE"] = cache
        for templates in TEMPLATE_SETS:
            start = time.perf_counter()
            matrix = class_matrix(args.encoder, vocabulary, templates)
            print(f"templates {templates}: class matrix built in {time.perf_counter() - start:.1f} s")
            for kind, pairs in kinds.items():
                nearest = dict(zip(distinct[kind], (encoded[kind] @ matrix.T).argmax(axis=1), strict=True))
                group = same.canonical
                hits = np.array([group[int(nearest[answer])] == group[label] for answer, label in pairs])
                correct.setdefault(kind, {})[templates] = hits
                print(f"  {kind}: {hits.sum()}/{len(hits)} = {100 * hits.mean():.2f}%")
    for kind, by_set in correct.items():
        for templates in TEMPLATE_SETS[:-1]:
            gained = int((by_set[templates] & ~by_set["one"]).sum())
            lost = int((~by_set[templates] & by_set["one"]).sum())
            p = binomtest(gained, gained + lost).pvalue if gained + lost else 1.0
            print(f"{kind}, {templates} vs one: {gained} gained, {lost} lost, McNemar p {p:.3f}")


if __name__ == "__main__":
    main()
