"""Helpers to run the real lmms-eval CLI in a subprocess and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Two real processes on the CPU (gloo); `accelerate launch --cpu` would start only one.
TWO_CPU_PROCESSES = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
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


def lmms_eval(args: list[str], out: Path, env: dict[str, str], launcher: list[str] | None = None):
    """Run lmms-eval with `--output_path out --log_samples`; return the finished process."""
    command = (launcher or [sys.executable, "-m"]) + ["lmms_eval", *args, "--output_path", str(out), "--log_samples"]
    full_env = {**os.environ, **OFFLINE, **env, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=900)


def run_lmms_eval(args: list[str], out: Path, env: dict[str, str], launcher: list[str] | None = None) -> dict:
    """Run lmms-eval; return {task: {"results", "report", "records", "samples", "log", ...}}.

    Fails with the log unless the run exited 0 and wrote its results.
    """
    done = lmms_eval(args, out, env, launcher)
    results = sorted(out.rglob("*_results.json"))
    assert done.returncode == 0 and results, (
        f"lmms-eval failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    )
    data = json.loads(results[-1].read_text())
    runs = {}
    for task, metrics in data["results"].items():
        samples_file = next(results[-1].parent.glob(f"*_samples_{task}.jsonl"))
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        runs[task] = {
            "results": metrics,
            "report": (data.get("imagenet_regt") or {}).get(task),
            "records": {s["images"]["image_id"]: s["images"] for s in samples if "images" in s},
            "samples": samples,
            "config": data["configs"].get(task),
            "samples_path": samples_file,
            "results_path": results[-1],
            "stdout": done.stdout,
            "log": done.stdout + done.stderr,
        }
    return runs


def headline(run: dict, name: str):
    """A metric of lmms-eval's printed table, by name (the filter suffix left out)."""
    hits = [value for key, value in run["results"].items() if key.split(",")[0] == name]
    assert len(hits) == 1, f"metric {name!r} not found once in {sorted(run['results'])}"
    return hits[0]


def metric(run: dict, name: str):
    """A metric of the task's full report (every category, every number the paper's tables hold)."""
    return run["report"]["metrics"][name]


def table_rows(stdout: str, task: str) -> list[str]:
    """The rows lmms-eval printed for a task in its results table."""
    return [line for line in stdout.splitlines() if line.startswith(f"|{task} ") or line.startswith(f"|{task}|")]


def regt_cli(*args: object, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m lmms_eval_imagenet_regt ARGS`, as a user runs it; with `check`, a non-zero exit fails."""
    command = [sys.executable, "-m", "lmms_eval_imagenet_regt", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert not check or done.returncode == 0, done.stderr[-4000:]
    return done
