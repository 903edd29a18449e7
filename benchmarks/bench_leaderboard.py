"""Time and peak memory of `imagenet-regt leaderboard` for 100, 1,000 and 10,000 valid submissions.

    python benchmarks/bench_leaderboard.py [--sizes 100 1000 10000]

One real submission is made first (the replay model's CW run on the 1,300 shared images with ReaL labels,
through the lmms-eval CLI and `imagenet-regt submit`); the others are copies under other model ids, every
one of them checked by the validator again, as a leaderboard maintainer's folder of strangers' files would
be (with the label set taken as those 1,300 images, so every row is complete and ranked). Prints wall
time and the command's peak RSS per size, and the size of what it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lmms_eval_imagenet_regt import ClassVocabulary, load_ground_truth

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_val_1300" / "images"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
#: `imagenet-regt ARGS` in a process that reports its own peak RSS (KiB) when it ends.
MEASURED = (
    "import resource, sys\n"
    "from lmms_eval_imagenet_regt.cli import main\n"
    "try:\n    main(sys.argv[1:])\n"
    "finally:\n    print('peak-rss-kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def command(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, env=env or ENV)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stderr[-3000:]}")
    return done


def template(folder: Path) -> dict:
    """A real submission: the replay model answering every image's original label name."""
    names, truth = ClassVocabulary.load().names, load_ground_truth("real")
    answers = folder / "answers.jsonl"
    ids = sorted(p.name.split(".")[0] for p in IMAGES.iterdir())
    answers.write_text("".join(json.dumps({"image_id": i, "answer": names[truth[i].imgt]}) + "\n" for i in ids))
    regt = [sys.executable, "-m", "lmms_eval_imagenet_regt"]
    command(
        *regt, "build-dataset", "--labels", "real", "--images", str(IMAGES), "--subset", "--out", str(folder / "ds")
    )
    env = {**ENV, "IMAGENET_REAL_DATA": str(folder / "ds"), "HF_DATASETS_CACHE": str(folder / "hf")}
    command(
        *[sys.executable, "-m", "lmms_eval", "--model", "imagenet_regt_replay", "--model_args", f"answers={answers}"],
        *["--tasks", "imagenet_real_cw", "--output_path", str(folder / "results"), "--log_samples"],
        env=env,
    )
    [results] = (folder / "results").rglob("*_results.json")
    command(*regt, "submit", str(results), "--out", str(folder / "template"), "--model-id", "template/model")
    [path] = (folder / "template").glob("*.json")
    submission = json.loads(path.read_text())
    # as if the label set were these 1,300 images: complete rows, so the leaderboard ranks them all
    submission["labels"]["images"], submission["coverage"] = submission["images"]["scored"], 1.0
    return submission


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        submission = template(folder)
        for size in args.sizes:
            files = folder / f"submissions-{size}"
            files.mkdir()
            for n in range(size):
                submission["model"]["id"] = f"org-{n % 97}/model-{n}"
                (files / f"{n}.json").write_text(json.dumps(submission))
            out = folder / f"board-{size}"
            start = time.perf_counter()
            done = command(sys.executable, "-c", MEASURED, "leaderboard", *map(str, files.iterdir()), "--out", str(out))
            elapsed = time.perf_counter() - start
            peak = int(done.stderr.rsplit("peak-rss-kib ", 1)[1]) / 1024
            written = {p.name: p.stat().st_size for p in out.iterdir()}
            print(
                f"{size:>6} submissions: {elapsed:5.1f} s, peak RSS {peak:.0f} MiB; "
                + ", ".join(f"{name} {bytes_ / 2**10:.0f} KiB" for name, bytes_ in sorted(written.items()))
            )


if __name__ == "__main__":
    main()
