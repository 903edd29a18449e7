"""Repeats and sensitivity: one task run under several seeds or orders, summarised with intervals.

- Repeats (the paper: R = 31 per configuration): an MC task with option seeds 0..R-1 (new distractors and
  option orders), or a CW/CW+ task with class-list orders `shuffled:0..R-1` (Table 6's "ImGT + 999" row),
  summarised as mean ± t-interval over repeats.
- Sensitivity (the paper's Supplementary ablation): one task over K image orders (`id`, then `shuffled:1`
  .. `shuffled:K-1`) and a list of batch sizes, each run's accuracy with its Wilson interval, and the spread.

Each variant is a copy of the task with its settings changed (`<task>_seed<k>`, `<task>_order<k>`), written
to a folder that lmms-eval reads with `--include_path`; the variants of one batch size run in one lmms-eval
invocation, so the model loads once per batch size.
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


def write_variants(task: str, variants: dict[str, dict], folder: Path) -> list[str]:
    """Write `<task>_<suffix>` for each variant (its settings over the task's) into `folder`; return the names."""
    metadata = task_metadata(task)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for suffix, settings in variants.items():
        name = f"{task}_{suffix}"
        config = {"include": str(tasks_dir() / f"{task}.yaml"), "task": name, "metadata": {**metadata, **settings}}
        write_text(folder / f"{name}.yaml", yaml.safe_dump(config, sort_keys=False))
        names.append(name)
    return names


def repeat_variants(task: str, repeats: int) -> dict[str, dict]:
    """MC: option seeds 0..R-1; CW and CW+: class-list orders shuffled:0..R-1."""
    protocol = task_metadata(task).get("protocol")
    if repeats < 2:
        raise InputError("repeats", "an interval needs at least two repeats", value=repeats)
    if protocol == "mc":
        return {f"seed{k}": {"seed": k} for k in range(repeats)}
    if protocol in ("cw", "cwplus"):
        return {f"seed{k}": {"class_order": f"shuffled:{k}"} for k in range(repeats)}
    raise InputError(task, f"protocol {protocol}: repeats vary MC options or the CW class order (mc, cw, cwplus)")


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


def _run_lmms_eval(names: list[str], tasks: Path, results: Path, lmms_args: list[str], launcher: str | None) -> Path:
    """One lmms-eval call over the variants; the results file it wrote."""
    prefix = shlex.split(launcher) if launcher else [sys.executable, "-m"]
    command = [*prefix, "lmms_eval", "--include_path", str(tasks), "--tasks", ",".join(names)]
    command += ["--output_path", str(results), "--log_samples", *lmms_args]
    done = subprocess.run(command)
    if done.returncode != 0:
        raise InputError("lmms-eval", f"exited with code {done.returncode}; see its output above")
    written = sorted(results.rglob("*_results.json"))
    if not written:
        raise InputError(results, "lmms-eval wrote no results file; see its output above")
    return written[-1]


def run_repeats(task: str, repeats: int, out: Path, lmms_args: list[str], launcher: str | None = None) -> dict:
    """Write the seeded copies, run them in one lmms-eval call, and summarise (also to `repeats.json`)."""
    names = write_variants(task, repeat_variants(task, repeats), out / "tasks")
    results = _run_lmms_eval(names, out / "tasks", out / "results", lmms_args, launcher)
    summary = summarize_repeats(results, task)
    record = {"task": task, "repeats": repeats, "results": str(results), "metrics": summary}
    write_text(out / "repeats.json", json.dumps(record, indent=2))
    return summary


def run_sensitivity(
    task: str,
    orders: int,
    batch_sizes: list[int],
    out: Path,
    lmms_args: list[str],
    launcher: str | None = None,
    subset: str = "all",
) -> dict:
    """The task over `orders` image orders and each batch size, on the same images (all, or `subset`):
    every run's headline accuracies with their intervals, and per metric the spread (max − min) over runs
    (also to `sensitivity.json`)."""
    if orders < 1 or not batch_sizes or min(batch_sizes) < 1:
        raise InputError("sensitivity", "needs at least one order and batch sizes of at least 1")
    for flag, why in (
        ("--batch_size", "sensitivity sets the batch size itself (--batch-sizes)"),
        ("--limit", "takes the first N images of each order, so orders would score different images; use --subset"),
    ):
        if any(arg == flag or arg.startswith(f"{flag}=") for arg in lmms_args):
            raise InputError(flag, why)
    variants = {
        f"order{k}": {"image_order": "id" if k == 0 else f"shuffled:{k}", "subset": subset} for k in range(orders)
    }
    names = write_variants(task, variants, out / "tasks")
    runs = []
    for batch in batch_sizes:
        results = _run_lmms_eval(
            names, out / "tasks", out / f"results-batch{batch}", [*lmms_args, "--batch_size", str(batch)], launcher
        )
        reports = read_results(results).get("imagenet_regt") or {}
        for name in names:
            report = reports.get(name)
            if report is None:
                raise InputError(results, f"holds no scored {name}: see lmms-eval's output above")
            label_set = report["labels"]["set"]
            metrics = {key: report["metrics"][key] for key in ("imgt_A", f"{label_set}_A")}
            intervals = {key: report["intervals"][key] for key in metrics}
            runs.append(
                {
                    "order": report["settings"]["image_order"],
                    "batch_size": batch,
                    "metrics": metrics,
                    "intervals": intervals,
                }
            )
    spread = {
        key: max(run["metrics"][key] for run in runs) - min(run["metrics"][key] for run in runs)
        for key in runs[0]["metrics"]
    }
    record = {"task": task, "runs": runs, "spread": spread}
    write_text(out / "sensitivity.json", json.dumps(record, indent=2))
    return record


def to_markdown(summary: dict[str, dict]) -> str:
    rows = ["| metric | mean | ± 95% CI | repeats |", "|---|---|---|---|"]
    for metric, value in summary.items():
        rows.append(
            f"| {metric} | {100 * value['mean']:.2f} | {100 * value['half_width']:.2f} | {len(value['values'])} |"
        )
    return "\n".join(rows)


def sensitivity_markdown(record: dict) -> str:
    keys = list(record["runs"][0]["metrics"])
    rows = ["| image order | batch size | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for run in record["runs"]:
        cells = [
            f"{100 * run['metrics'][k]:.2f} [{100 * run['intervals'][k][0]:.1f}, {100 * run['intervals'][k][1]:.1f}]"
            for k in keys
        ]
        rows.append(f"| {run['order']} | {run['batch_size']} | " + " | ".join(cells) + " |")
    rows.append("| spread (max − min) | | " + " | ".join(f"{100 * record['spread'][k]:.2f}" for k in keys) + " |")
    return "\n".join(rows)
