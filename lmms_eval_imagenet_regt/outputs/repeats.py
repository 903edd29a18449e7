"""Multiple-choice repeats: one MC task run R times with different seeds, summarised as mean ± t-interval.

The paper repeats each MC configuration R = 31 times with new option orders and distractors. Here each
repeat is a copy of the task with its own seed (`<task>_seed<k>`), written to a folder that lmms-eval
reads with `--include_path`; all copies run in one lmms-eval invocation, so the model loads once.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from ..errors import InputError
from ..files import write_text
from ..intervals import mean_interval
from ..lmms.plugin import tasks_dir
from .runs import read_results

#: Metrics summarised over repeats: accuracies and OOP rates (counts and hashes do not vary).
REPEATED_PREFIXES = ("imgt_", "im_and_re_", "oop_")


def task_metadata(task: str) -> dict:
    """The `metadata` (protocol settings) of a shipped task, its includes resolved."""
    from lmms_eval.utils import load_yaml_config

    path = tasks_dir() / f"{task}.yaml"
    if not path.is_file():
        raise InputError(task, f"no such task in {tasks_dir()}")
    return dict(load_yaml_config(str(path), mode="simple").get("metadata") or {})


def write_repeat_tasks(task: str, repeats: int, folder: Path) -> list[str]:
    """Write `<task>_seed0` … `<task>_seed{R-1}` into `folder`; return their names."""
    metadata = task_metadata(task)
    if metadata.get("protocol") != "mc":
        raise InputError(task, "repeats are for multiple-choice tasks (protocol mc)")
    if repeats < 2:
        raise InputError("repeats", "an interval needs at least two repeats", value=repeats)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for seed in range(repeats):
        name = f"{task}_seed{seed}"
        config = {"include": str(tasks_dir() / f"{task}.yaml"), "task": name, "metadata": {**metadata, "seed": seed}}
        write_text(folder / f"{name}.yaml", yaml.safe_dump(config, sort_keys=False))
        names.append(name)
    return names


def summarize_repeats(results_path: str | Path, task: str) -> dict[str, dict]:
    """Per metric: mean, half-width of the 95% t-interval, and the per-seed values."""
    reports = read_results(results_path).get("imagenet_regt") or {}
    runs = [report["metrics"] for name, report in sorted(reports.items()) if name.startswith(f"{task}_seed")]
    if len(runs) < 2:
        raise InputError(results_path, f"fewer than two scored repeats of {task} in the results")
    prefixes = (*REPEATED_PREFIXES, f"{reports[f'{task}_seed0']['labels']['set']}_")
    summary = {}
    for metric in runs[0]:
        values = [run.get(metric) for run in runs]
        if metric.startswith(prefixes) and not metric.startswith("count_") and None not in values:
            mean, half = mean_interval(values)
            summary[metric] = {"mean": mean, "half_width": half, "values": values}
    return summary


def run_repeats(task: str, repeats: int, out: Path, lmms_args: list[str], launcher: str | None = None) -> dict:
    """Write the seeded copies, run them in one lmms-eval call, and summarise (also to `mc_repeats.json`)."""
    names = write_repeat_tasks(task, repeats, out / "tasks")
    prefix = shlex.split(launcher) if launcher else [sys.executable, "-m"]
    command = [*prefix, "lmms_eval", "--include_path", str(out / "tasks"), "--tasks", ",".join(names)]
    command += ["--output_path", str(out / "results"), "--log_samples", *lmms_args]
    done = subprocess.run(command)
    if done.returncode != 0:
        raise InputError("lmms-eval", f"exited with code {done.returncode}; see its output above")
    results = sorted((out / "results").rglob("*_results.json"))
    if not results:
        raise InputError(out / "results", "lmms-eval wrote no results file; see its output above")
    summary = summarize_repeats(results[-1], task)
    record = {"task": task, "repeats": repeats, "results": str(results[-1]), "metrics": summary}
    write_text(out / "mc_repeats.json", json.dumps(record, indent=2))
    return summary


def to_markdown(summary: dict[str, dict]) -> str:
    rows = ["| metric | mean | ± 95% CI | repeats |", "|---|---|---|---|"]
    for metric, value in summary.items():
        rows.append(
            f"| {metric} | {100 * value['mean']:.2f} | {100 * value['half_width']:.2f} | {len(value['values'])} |"
        )
    return "\n".join(rows)
