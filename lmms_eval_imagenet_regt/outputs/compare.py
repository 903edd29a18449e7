"""Is run A really better than run B? A paired comparison on the images both runs scored.

Per label category, under ImGT and under the runs' labels: both accuracies, their difference A − B with a
paired bootstrap interval, the discordant images (right in A only, right in B only) and McNemar's exact
p-value. Pairing matters: two models that fail on the same hard images differ far less than their
separate intervals suggest. Runs scored against different labels (by hash) are refused unless asked for;
then each run is judged against its own labels and the category is A's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..intervals import CONFIDENCE, RESAMPLES, SEED, mcnemar_exact, paired_difference_interval
from ..labels.categories import CATEGORIES
from ..records import records_ground_truth
from ..scoring import category_parts, judge
from .runs import TaskRun, read_samples


@dataclass(frozen=True)
class _Verdicts:
    category: str
    imgt: bool
    labels: bool


def _verdicts(run: TaskRun) -> dict[str, _Verdicts]:
    equivalences = run.config.equivalence_set
    truth = records_ground_truth(run.records or [], run.label_set)
    out = {}
    for record in run.records or []:
        verdict = judge(truth[record["image_id"]], record["classes"], equivalences)
        out[record["image_id"]] = _Verdicts(verdict.category, verdict.imgt, verdict.labels)
    return out


def _convention(run: TaskRun) -> str:
    return (run.report or {}).get("convention", "regt")


def _describe(run: TaskRun) -> dict[str, Any]:
    return {
        "task": run.task,
        "samples": str(run.samples_path),
        "label_set": run.label_set,
        "labels_sha256": run.recorded["labels"]["sha256"],
        "images": len(run.records or []),
    }


def compare_runs(
    first: TaskRun,
    second: TaskRun,
    *,
    allow_different_labels: bool = False,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The paired comparison of two runs read with their records (`read_samples`)."""
    if resamples < 1 or seed < 0:
        raise InputError("bootstrap", "needs at least one resample and a seed of 0 or more", value=(seed, resamples))
    hashes = (first.recorded["labels"]["sha256"], second.recorded["labels"]["sha256"])
    if hashes[0] != hashes[1] and not allow_different_labels:
        raise InputError(
            second.samples_path,
            f"was scored against other labels than {first.samples_path} (sha256 {hashes[1][:16]}… vs "
            f"{hashes[0][:16]}…); pass --allow-different-labels to compare each against its own labels",
        )
    if _convention(first) != _convention(second):
        raise InputError(second.samples_path, "was scored under another convention for images with no label")
    a, b = _verdicts(first), _verdicts(second)
    common = sorted(a.keys() & b.keys())
    if not common:
        raise InputError(second.samples_path, f"shares no scored image with {first.samples_path}")
    parts = category_parts(_convention(first))
    if _convention(first) == "real":
        parts["N"] = ()
    categories = {}
    for name in CATEGORIES:
        leaves = parts.get(name, (name,))
        images = [image for image in common if a[image].category in leaves]
        categories[name] = {"count": len(images)}
        if not images:
            continue
        for kind in ("imgt", "labels"):
            right_a = [getattr(a[image], kind) for image in images]
            right_b = [getattr(b[image], kind) for image in images]
            only_a = sum(x and not y for x, y in zip(right_a, right_b, strict=True))
            only_b = sum(y and not x for x, y in zip(right_a, right_b, strict=True))
            interval = paired_difference_interval(
                right_a, right_b, seed=seed, resamples=resamples, confidence=confidence
            )
            categories[name][kind] = {
                "a": sum(right_a) / len(images),
                "b": sum(right_b) / len(images),
                "difference": (only_a - only_b) / len(images),
                "interval": list(interval),
                "a_only": only_a,
                "b_only": only_b,
                "p_value": mcnemar_exact(only_a, only_b),
            }
    return {
        "a": _describe(first),
        "b": _describe(second),
        "images": len(common),
        "only_in_a": len(a) - len(common),
        "only_in_b": len(b) - len(common),
        "same_labels": hashes[0] == hashes[1],
        "convention": _convention(first),
        "bootstrap": {"seed": seed, "resamples": resamples, "confidence": confidence},
        "categories": categories,
    }


def compare_files(samples_a: str | Path, samples_b: str | Path, **options: Any) -> dict[str, Any]:
    """`compare_runs` on two samples files (each checked against the results file beside it)."""
    return compare_runs(read_samples(samples_a), read_samples(samples_b), **options)


def to_markdown(comparison: dict[str, Any]) -> str:
    """Two tables (ImGT, then the labels), one row per category, accuracies and differences in %."""
    a, b = comparison["a"], comparison["b"]
    names = {"regt": "ReGT", "real": "ReaL"}
    lines = [
        f"A: {a['task']} ({a['samples']}), B: {b['task']} ({b['samples']})",
        f"{comparison['images']} images scored in both (A only {comparison['only_in_a']}, "
        f"B only {comparison['only_in_b']}); paired bootstrap: {comparison['bootstrap']['resamples']} "
        f"resamples, seed {comparison['bootstrap']['seed']}; McNemar exact test",
    ]
    if not comparison["same_labels"]:
        lines.append("the runs were scored against different labels: each against its own, categories from A")
    for kind, title in (("imgt", "ImGT"), ("labels", names.get(a["label_set"], a["label_set"]))):
        lines += [
            "",
            f"| {title} | images | A | B | A − B | 95% CI | right in A only | right in B only | McNemar p |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in comparison["categories"].items():
            if kind not in row:
                lines.append(f"| {name} | 0 | – | – | – | – | – | – | – |")
                continue
            value = row[kind]
            low, high = value["interval"]
            lines.append(
                f"| {name} | {row['count']} | {100 * value['a']:.2f} | {100 * value['b']:.2f} | "
                f"{100 * value['difference']:+.2f} | [{100 * low:+.2f}, {100 * high:+.2f}] | {value['a_only']} | "
                f"{value['b_only']} | {value['p_value']:.3g} |"
            )
    return "\n".join(lines)
