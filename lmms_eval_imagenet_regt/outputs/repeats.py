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
from ..lmms.plugin import tasks_dir
from ..records import METRICS
from ..scoring import mean_interval

#: Metrics summarised over repeats: the accuracies and OOP rates (counts and hashes do not vary).
REPEATED = tuple(m for m in METRICS["mc"] if m.startswith(("imgt_", "regt_", "im_and_re_", "oop_")))


def task_settings(task: str) -> dict:
    """The protocol settings of a shipped task (its `lmms_eval_specific_kwargs.default`)."""
    path = tasks_dir() / f"{task}.yaml"
    if not path.is_file():
        raise InputError(task, f"no such task in {tasks_dir()}")
    config = yaml.safe_load(path.read_text(encoding="utf-8").replace("!function ", ""))
    return dict(config["lmms_eval_specific_kwargs"]["default"])


def write_repeat_tasks(task: str, repeats: int, folder: Path) -> list[str]:
    """Write `<task>_seed0` … `<task>_seed{R-1}` into `folder`; return their names."""
    settings = task_settings(task)
    if settings.get("protocol") != "mc":
        raise InputError(task, "repeats are for multiple-choice tasks (protocol mc)")
    if repeats < 2:
        raise InputError("repeats", "an interval needs at least two repeats", value=repeats)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for seed in range(repeats):
        name = f"{task}_seed{seed}"
        body = yaml.safe_dump({"lmms_eval_specific_kwargs": {"default": {**settings, "seed": seed}}}, sort_keys=False)
        body = body.replace("  default:\n", "  default: &protocol\n", 1)
        (folder / f"{name}.yaml").write_text(
            f"include: {tasks_dir() / f'{task}.yaml'}\ntask: {name}\n{body}"
            f"filter_list:\n  - name: mc\n    filter:\n"
            f"      - function: !function lmms_eval_imagenet_regt.lmms.hooks.AnswerFilter\n        <<: *protocol\n",
            encoding="utf-8",
        )
        names.append(name)
    return names


def summarize_repeats(results_path: str | Path, task: str) -> dict[str, dict]:
    """Per metric: mean, half-width of the 95% t-interval, and the per-seed values."""
    results = json.loads(Path(results_path).read_text(encoding="utf-8"))["results"]
    runs = {name: values for name, values in results.items() if name.startswith(f"{task}_seed")}
    if len(runs) < 2:
        raise InputError(results_path, f"fewer than two repeats of {task} in the results")
    summary = {}
    for metric in REPEATED:
        values = [_metric(run, metric) for run in runs.values()]
        if any(v is None for v in values):
            continue
        mean, half = mean_interval(values)
        summary[metric] = {"mean": mean, "half_width": half, "values": values}
    return summary


def _metric(run: dict, name: str):
    hits = [value for key, value in run.items() if key.split(",")[0] == name]
    return hits[0] if hits else None


def run_repeats(task: str, repeats: int, out: Path, lmms_args: list[str], launcher: str | None = None) -> dict:
    """Write the seeded copies, run them in one lmms-eval call, and summarise (also to `mc_repeats.json`)."""
    names = write_repeat_tasks(task, repeats, out / "tasks")
    prefix = shlex.split(launcher) if launcher else [sys.executable, "-m"]
    command = [*prefix, "lmms_eval", "--include_path", str(out / "tasks"), "--tasks", ",".join(names)]
    command += ["--output_path", str(out / "results"), "--log_samples", *lmms_args]
    subprocess.run(command, check=True)
    results = sorted((out / "results").rglob("*_results.json"))
    if not results:
        raise InputError(out / "results", "lmms-eval wrote no results file; see its output above")
    summary = summarize_repeats(results[-1], task)
    (out / "mc_repeats.json").write_text(
        json.dumps({"task": task, "repeats": repeats, "results": str(results[-1]), "metrics": summary}, indent=2)
    )
    return summary


def to_markdown(summary: dict[str, dict]) -> str:
    rows = ["| metric | mean | ± 95% CI | repeats |", "|---|---|---|---|"]
    for metric, value in summary.items():
        rows.append(
            f"| {metric} | {100 * value['mean']:.2f} | {100 * value['half_width']:.2f} | {len(value['values'])} |"
        )
    return "\n".join(rows)
