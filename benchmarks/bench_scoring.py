"""Time the scoring core on 50,000 predictions (all validation images, ReaL labels, default equivalences).

    python benchmarks/bench_scoring.py

Prints the label-loading time and the best of five scoring runs. Target: well under a second of scoring.
"""

from __future__ import annotations

import random
import time

from lmms_eval_imagenet_regt import EquivalenceSet, load_ground_truth, score_predictions


def main() -> None:
    start = time.perf_counter()
    truth = load_ground_truth("real")
    equivalences = EquivalenceSet.load()
    loaded = time.perf_counter() - start
    rng = random.Random(0)
    predictions = {r.image_id: rng.randrange(1000) for r in truth}
    flags = {image_id: rng.random() < 0.1 for image_id in predictions}
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        score_predictions(predictions, truth, equivalences, out_of_prompt=flags)
        timings.append(time.perf_counter() - start)
    print(f"load ReaL labels (50,000 images): {loaded:.2f} s")
    print(f"score 50,000 predictions with OOP flags: best {min(timings):.3f} s, median {sorted(timings)[2]:.3f} s")


if __name__ == "__main__":
    main()
