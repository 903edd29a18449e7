"""Time the mapping of 50,000 free-text answers to classes with all-MiniLM-L6-v2 on this machine.

    python benchmarks/bench_mapping.py [--answers 50000] [--distinct 4000]

The answers are a realistic mix: class names with case, article and punctuation variants, paraphrases
("a photo of a ..."), and junk, with many repeats (a model answers the same name for many images).
Prints the encoder load time, then the mapping time with a cold class-matrix cache (matrix built) and a warm
one (matrix read from disk). Target: warm under 30 s.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from lmms_eval_imagenet_regt import ClassVocabulary
from lmms_eval_imagenet_regt.protocol.mapping import DEFAULT_ENCODER, DEFAULT_TEMPLATES, get_encoder, map_answers


def answers(total: int, distinct: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    names = ClassVocabulary.load().names
    forms = ["{}", "{}", "A {}.", "{} ", "It is a {}", "a photo of a {}", "{}s", "probably a {}"]
    pool = [rng.choice(forms).format(rng.choice(names)) for _ in range(distinct - 50)]
    pool += [f"unknown object {i}" for i in range(50)]
    return [rng.choice(pool) for _ in range(total)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=50_000)
    parser.add_argument("--distinct", type=int, default=4_000)
    args = parser.parse_args()
    batch = answers(args.answers, args.distinct)
    vocabulary = ClassVocabulary.load()
    start = time.perf_counter()
    get_encoder(DEFAULT_ENCODER)
    print(f"load {DEFAULT_ENCODER}: {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as cache:
        import os

        os.environ["IMAGENET_REGT_CACHE"] = cache
        for label in ("cold class-matrix cache", "warm class-matrix cache"):
            start = time.perf_counter()
            mapped = map_answers(batch, DEFAULT_ENCODER, vocabulary, DEFAULT_TEMPLATES)
            elapsed = time.perf_counter() - start
            print(
                f"map {len(batch):,} answers ({len(set(batch)):,} distinct, {len(mapped):,} mapped), "
                f"{label}: {elapsed:.1f} s"
            )


if __name__ == "__main__":
    main()
