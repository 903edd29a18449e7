"""Time and memory of `build-dataset` on the 1,300 shared images with ReaL labels, projected to 50,000.

    python benchmarks/bench_build_dataset.py [--images ../shared/data/imagenet_val_1300/images]

Rows are written shard by shard (1,000 rows), so memory is bounded by one shard, not by the dataset: the
script also builds with 100-row shards to show that the peak follows the shard size. Time is projected
linearly (decode check and copy of each JPEG dominate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from lmms_eval_imagenet_regt.labels.ground_truth import load_ground_truth
from lmms_eval_imagenet_regt.outputs.dataset import build_dataset

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_val_1300" / "images"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    args = parser.parse_args()
    load_ground_truth("real")  # warm the label cache: measure the build, not the first label read
    for shard_size in (1000, 100):
        with tempfile.TemporaryDirectory() as out:
            tracemalloc.start()
            start = time.perf_counter()
            report = build_dataset("real", out, images=args.images, subset=True, shard_size=shard_size)
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            size = sum(p.stat().st_size for p in Path(out).rglob("*.parquet"))
        per_image = elapsed / report.rows
        print(
            f"shard size {shard_size}: {report.rows} images in {elapsed:.2f} s ({report.rows / elapsed:.0f} images/s), "
            f"peak Python memory {peak / 2**20:.0f} MiB, output {size / 2**20:.0f} MiB"
        )
        print(f"  projected for 50,000 images: {per_image * 50_000 / 60:.1f} min, peak memory about the same")


if __name__ == "__main__":
    main()
