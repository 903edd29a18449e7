"""Helpers to run the real lmms-eval CLI in a subprocess and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Two real processes on the CPU (gloo); `accelerate launch --cpu` would start only one.
TWO_CPU_PROCESSES = [
    "accelerate",
    "launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "-m",
]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_lmms_eval(args: list[str], out: Path, env: dict[str, str], launcher: list[str] | None = None) -> dict:
    """Run lmms-eval; return {task: {"results": ..., "samples": [...], "log": stdout + stderr, ...}}.

    Fails with the log on any error.

    lmms-eval exits 0 even when the evaluation failed, so success is judged by the results file.
    """
    command = (launcher or [sys.executable, "-m"]) + ["lmms_eval", *args, "--output_path", str(out), "--log_samples"]
    full_env = {**os.environ, **OFFLINE, **env, "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=900)
    results = sorted(out.rglob("*_results.json"))
    assert results, (
        f"lmms-eval wrote no results (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    )
    data = json.loads(results[-1].read_text())
    runs = {}
    for task, metrics in data["results"].items():
        samples_file = next(results[-1].parent.glob(f"*_samples_{task}.jsonl"))
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        runs[task] = {
            "results": metrics,
            "samples": samples,
            "config": data["configs"].get(task),
            "samples_path": samples_file,
            "results_path": results[-1],
            "log": done.stdout + done.stderr,
        }
    return runs


def metric(run: dict, name: str):
    """A metric by name, whatever the filter suffix."""
    hits = [value for key, value in run["results"].items() if key.split(",")[0] == name]
    assert len(hits) == 1, f"metric {name!r} not found once in {sorted(run['results'])}"
    return hits[0]
