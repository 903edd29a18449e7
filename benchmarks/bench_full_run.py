"""A full 50,000-image CW+ evaluation through the `lmms-eval` CLI, with the replay model: what it costs.

    python benchmarks/bench_full_run.py [--images 50000] [--keep DIR]

The images are small generated JPEGs (one colour each) carrying the real ReaL labels of the 50,000
validation ids; the answers are a realistic mix, seeded: exact class names, paraphrases (a leading article,
other case, a trailing period), complete reasoning blocks, truncated reasoning, failed requests, empty
answers and wrong classes. lmms-eval runs twice: reading the images where they are (labels from timm's
ReaL copy, nothing built), then from a dataset joined by `build-dataset` first. The script prints, for
each, the time to the first model request, the wall time and the peak RSS; the size of the files written
(bytes per image of the samples file, with and without lmms-eval's own `input` field), the answer outcomes
and the headline numbers. It also times building 50,000 multiple-choice prompts (option sampling
included), in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lmms_eval_imagenet_regt import ClassVocabulary, load_ground_truth

#: Shares of the answer kinds (the rest are exact class names).
MIX = {"paraphrase": 0.10, "reasoning": 0.10, "truncated": 0.03, "failed": 0.02, "empty": 0.02, "wrong": 0.13}


def answer(kind: str, name: str, other: str, rng: random.Random) -> str:
    return {
        "exact": name,
        "paraphrase": rng.choice([f"a {name}", name.upper(), f"{name}.", f"It is a {name}"]),
        "reasoning": f"<think>The image shows something like a {other}, but the shape says {name}.</think>{name}",
        "truncated": f"<think>Let me look closely. It could be a {name} or a {other}, the",
        "failed": "[LMMS_EVAL_REQUEST_FAILED after 5 retries] Error code: 503 - upstream timed out",
        "empty": "",
        "wrong": other,
    }[kind]


def write_inputs(folder: Path, count: int) -> tuple[Path, Path, dict[str, int]]:
    """`count` tiny JPEGs named by validation id, and a replay answers file; returns the answer kinds."""
    from PIL import Image

    rng, names = random.Random(0), ClassVocabulary.load().names
    truth = load_ground_truth("real")
    ids = sorted(truth.images)[:count]
    images = folder / "images"
    images.mkdir()
    kinds: dict[str, int] = {}
    with open(folder / "answers.jsonl", "w", encoding="utf-8") as handle:
        for image_id in ids:
            colour = tuple(rng.randrange(256) for _ in range(3))
            Image.new("RGB", (16, 16), colour).save(images / f"{image_id}.JPEG", quality=90)
            roll, kind = rng.random(), "exact"
            for name, share in MIX.items():
                if roll < share:
                    kind = name
                    break
                roll -= share
            kinds[kind] = kinds.get(kind, 0) + 1
            imgt = truth[image_id].imgt
            text = answer(kind, names[imgt], names[(imgt + rng.randrange(1, 1000)) % 1000], rng)
            handle.write(json.dumps({"image_id": image_id, "answer": text}) + "\n")
    return images, folder / "answers.jsonl", kinds


#: Runs `python -m MODULE ARGS` and prints its own peak RSS (KiB) when it ends.
MEASURED = (
    "import resource, runpy, sys\n"
    "try:\n    runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
    "finally:\n    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    print('peak-rss-kib', peak, file=sys.stderr, flush=True)\n"
)
FIRST_REQUEST = "Running generate_until requests"


def timed(module: str, args: list[str], env: dict[str, str]) -> dict:
    """Wall seconds, seconds until lmms-eval's first request (if it makes one), peak RSS (MiB), output."""
    start, first, lines = time.perf_counter(), None, []
    with subprocess.Popen(
        [sys.executable, "-c", MEASURED, module, *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        for line in process.stdout:
            lines.append(line)
            if first is None and FIRST_REQUEST in line:
                first = time.perf_counter() - start
    output = "".join(lines)
    if process.returncode != 0:
        sys.exit(f"failed ({process.returncode}): {module} {' '.join(args)}\n{output[-4000:]}")
    peak = int(output.rsplit("peak-rss-kib ", 1)[1].split()[0]) / 1024
    return {"seconds": time.perf_counter() - start, "first_request": first, "peak": peak, "output": output}


def mc_prompt_seconds(count: int) -> float:
    """Seconds to build `count` multiple-choice prompts (options sampled once per image)."""
    from PIL import Image

    from lmms_eval_imagenet_regt.lmms.hooks import doc_to_text
    from lmms_eval_imagenet_regt.lmms.tasks import TASKS, TaskSpec
    from lmms_eval_imagenet_regt.protocol.settings import ProtocolConfig

    truth = load_ground_truth("real")
    TASKS["bench_mc"] = TaskSpec("bench_mc", ProtocolConfig(protocol="mc"), truth, "real")
    image = Image.new("RGB", (8, 8))
    ids = sorted(truth.images)[:count]
    start = time.perf_counter()
    for image_id in ids:
        doc_to_text({"image_id": image_id, "image": image}, {}, task="bench_mc")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        env["HF_DATASETS_CACHE"] = str(folder / "hf-datasets-cache")
        start = time.perf_counter()
        images, answers, kinds = write_inputs(folder, args.images)
        print(f"generated {args.images} JPEGs and answers in {time.perf_counter() - start:.0f} s: {kinds}")

        run = ["--model", "imagenet_regt_replay", "--model_args", f"answers={answers}", "--tasks"]
        run += ["imagenet_real_cwplus", "--batch_size", "64", "--log_samples", "--output_path"]
        lazy = timed("lmms_eval", [*run, str(folder / "results")], {**env, "IMAGENET_REGT_IMAGES": str(images)})
        print(
            f"lmms-eval, imagenet_real_cwplus, images read where they are: first request after "
            f"{lazy['first_request']:.0f} s, done in {lazy['seconds']:.0f} s ({args.images / lazy['seconds']:.0f} "
            f"images/s), peak RSS {lazy['peak']:.0f} MiB"
        )
        dataset = folder / "dataset"
        built = timed(
            "lmms_eval_imagenet_regt",
            ["build-dataset", "--labels", "real", "--images", str(images), "--subset", "--out", str(dataset)],
            env,
        )
        size = sum(p.stat().st_size for p in dataset.rglob("*") if p.is_file())
        joined = timed("lmms_eval", [*run, str(folder / "joined")], {**env, "IMAGENET_REAL_DATA": str(dataset)})
        print(
            f"the same from a joined dataset: build-dataset {built['seconds']:.0f} s "
            f"(peak RSS {built['peak']:.0f} MiB, {size / 2**20:.0f} MiB on disk), "
            f"then first request after {joined['first_request']:.0f} s, "
            f"done in {joined['seconds']:.0f} s, peak RSS {joined['peak']:.0f} MiB"
        )
        out, done = folder / "results", lazy
        [results] = out.rglob("*_results.json")
        [samples] = out.rglob("*_samples_*.jsonl")
        report = json.loads(results.read_text())["imagenet_regt"]["imagenet_real_cwplus"]
        without_input = 0
        with open(samples, encoding="utf-8") as handle:
            for line in handle:
                sample = json.loads(line)
                sample.pop("input", None)
                without_input += len(json.dumps(sample, ensure_ascii=False).encode()) + 1
        size = samples.stat().st_size
        print(
            f"files: results {results.stat().st_size / 2**10:.0f} KiB; "
            f"samples {size / 2**20:.0f} MiB = {size / args.images:.0f} bytes per image, "
            f"{without_input / args.images:.0f} without lmms-eval's `input` (the class list)"
        )
        metrics = report["metrics"]
        print(
            f"scored {report['images']['scored']} images: ImGT {100 * metrics['imgt_A']:.2f}, "
            f"ReaL {100 * metrics['real_A']:.2f}, plain CW ReaL {100 * metrics['cw_real_A']:.2f}, "
            f"out of prompt {100 * metrics['oop_A']:.2f}%"
        )
        print(f"outcomes: {report['outcomes']['A']}")
        print(
            "headline rows printed by lmms-eval:",
            sum(line.startswith("|imagenet_real_cwplus") for line in done["output"].splitlines()),
        )
    seconds = mc_prompt_seconds(args.images)
    print(f"MC prompts (options sampled once per image): {args.images} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
