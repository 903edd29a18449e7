"""A second annotation pass: review where models disagree with the labels, publish a new label version.

`export_review` picks the images worth a second look (a model's answer outside the image's labels) and
writes a folder: `page/` for the reviewer (a static HTML page, its data, the images) and `key.json`,
which stays with the curator: where each candidate came from, the parent labels and their hash. On the
page the candidates (each disagreeing model's answer, ImGT, the current labels) are shuffled class names
with no source, so the reviewer does not know which is which.

`import_review` turns the reviewer's decisions into a new label file in the project's ReGT format (JSON
lines, with the decision on every changed row), a provenance file, and a summary like the paper's
Figure 7: per label category, how often the reviewer took the model's answer instead of the label, kept
the label, combined both, or changed something else.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..files import atomic_path, load_json, write_bytes, write_text
from ..images import open_images
from ..labels.categories import LEAF_CATEGORIES, image_category
from ..labels.equivalences import EquivalenceSet
from ..labels.ground_truth import GroundTruth, ImageLabels, normalize_image_id, read_regt_jsonl
from ..labels.vocabulary import ClassVocabulary
from .runs import read_samples

PAGE = Path(__file__).parents[1] / "data" / "review.html"
DEFAULT_CATEGORIES = ("S+", "S-", "M+", "M-")
#: Outcomes of one reviewed image, in the summary's column order.
OUTCOMES = ("took model", "kept label", "combined", "other", "not sure")


@dataclass(frozen=True)
class Run:
    """One model's final predictions (after the OW/CW+ mapping), by image id."""

    name: str
    predictions: dict[str, frozenset[int]]

    @classmethod
    def load(cls, spec: str) -> Run:
        """`NAME=SAMPLES` or `SAMPLES` (an lmms-eval samples file; named after its folder and task)."""
        name, _, path = ("", "", spec) if Path(spec).is_file() or "=" not in spec else spec.partition("=")
        run = read_samples(path)
        name = name or f"{Path(path).parent.name}:{run.task}"
        return cls(name, {r["image_id"]: frozenset(r["classes"]) for r in run.records})


def _disagreements(run: Run, truth: GroundTruth, equivalences: EquivalenceSet) -> dict[str, frozenset[int]]:
    """Images where the run names a class and none of it is admissible (labels and their equivalents)."""
    out = {}
    for image_id, predicted in run.predictions.items():
        if image_id in truth and predicted and not predicted & equivalences.expand(truth[image_id].labels):
            out[image_id] = predicted
    return out


def select_images(
    runs: list[Run],
    truth: GroundTruth,
    equivalences: EquivalenceSet,
    *,
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
    min_disagree: int = 1,
    max_images: int | None = None,
    seed: int = 0,
) -> dict[str, dict[str, frozenset[int]]]:
    """{image id: {run name: its disagreeing prediction}} for the images to review, sorted by id.

    An image qualifies when its category (under the parent labels) is in `categories` and at least
    `min_disagree` runs disagree with its labels; beyond `max_images`, a seeded random sample is kept.
    """
    unknown = sorted(set(categories) - set(LEAF_CATEGORIES))
    if unknown:
        raise InputError("--categories", f"unknown category; use some of {', '.join(LEAF_CATEGORIES)}", value=unknown)
    found: dict[str, dict[str, frozenset[int]]] = {}
    for run in runs:
        for image_id, predicted in _disagreements(run, truth, equivalences).items():
            found.setdefault(image_id, {})[run.name] = predicted
    chosen = sorted(
        image_id
        for image_id, by_run in found.items()
        if len(by_run) >= min_disagree and image_category(truth[image_id], equivalences) in categories
    )
    if max_images is not None and len(chosen) > max_images:
        chosen = sorted(random.Random(seed).sample(chosen, max_images))
    return {image_id: found[image_id] for image_id in chosen}


def _candidates(labels: ImageLabels, by_run: dict[str, frozenset[int]]) -> dict[int, list[str]]:
    """Each candidate class with its sources (`labels`, `imgt`, `model:NAME`)."""
    sources: dict[int, list[str]] = {}
    for index in sorted(labels.labels):
        sources.setdefault(index, []).append("labels")
    sources.setdefault(labels.imgt, []).append("imgt")
    for name, predicted in sorted(by_run.items()):
        for index in sorted(predicted):
            sources.setdefault(index, []).append(f"model:{name}")
    return sources


def export_review(
    runs: list[Run],
    truth: GroundTruth,
    images: str | Path,
    out: str | Path,
    *,
    equivalences: EquivalenceSet | None = None,
    names: str = "clean",
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
    models: tuple[str, ...] | None = None,
    min_disagree: int = 1,
    max_images: int | None = None,
    seed: int = 0,
) -> dict:
    """Write `out/page/` (for the reviewer) and `out/key.json` (for the curator); return the key."""
    equivalences, vocabulary = equivalences or EquivalenceSet.load(), ClassVocabulary.load(names)
    if models:
        unknown = sorted(set(models) - {run.name for run in runs})
        if unknown:
            raise InputError(
                "--models", f"no run by that name (runs: {', '.join(r.name for r in runs)})", value=unknown
            )
        runs = [run for run in runs if run.name in models]
    selected = select_images(
        runs, truth, equivalences, categories=categories, min_disagree=min_disagree, max_images=max_images, seed=seed
    )
    if not selected:
        raise InputError("review export", "no image matches the filters: nothing to review")
    out, shuffle = Path(out), random.Random(seed)
    page = out / "page"
    (page / "images").mkdir(parents=True, exist_ok=True)
    files = open_images(str(images))
    absent = sorted(set(selected) - files.ids())
    if absent:
        raise InputError(images, f"{len(absent)} selected images are not there, e.g. {absent[0]}")
    key_images, page_images = {}, []
    for image_id, by_run in tqdm(selected.items(), desc="Exporting images", disable=len(selected) < 500):
        sources = _candidates(truth[image_id], by_run)
        order = sorted(sources)
        shuffle.shuffle(order)
        name = f"{image_id}.JPEG"
        write_bytes(page / "images" / name, files.read(image_id))
        key_images[image_id] = {
            "category": image_category(truth[image_id], equivalences),
            "labels": sorted(truth[image_id].labels),
            "imgt": truth[image_id].imgt,
            "candidates": [{"class": index, "sources": sources[index]} for index in order],
        }
        page_images.append({"image_id": image_id, "file": f"images/{name}", "candidates": order})
    settings = {
        "runs": [run.name for run in runs],
        "categories": list(categories),
        "min_disagree": min_disagree,
        "max_images": max_images,
        "seed": seed,
        "names": names,
    }
    content = json.dumps([truth.sha256, settings, key_images], sort_keys=True).encode()
    export_id = hashlib.sha256(content).hexdigest()[:16]
    key = {
        "export_id": export_id,
        "parent": {"name": truth.name, "sha256": truth.sha256},
        "settings": settings,
        "images": key_images,
    }
    write_text(out / "key.json", json.dumps(key, indent=1))
    data = {"export_id": export_id, "classes": list(vocabulary.names), "images": page_images}
    write_text(page / "data.js", f"window.REVIEW = {json.dumps(data)};\n")
    shutil.copyfile(PAGE, page / "index.html")
    return key


# --- import --------------------------------------------------------------------------------------------


def _read_json(path: str | Path, what: str) -> dict:
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, f"{what} must be a JSON object")
    return data


def _class_list(path: Path, image_id: str, field: str, value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InputError(path, f"{image_id}: '{field}' must be a list of class indices", value=value)
    bad = [v for v in value if not 0 <= v < 1000]
    if bad:
        raise InputError(path, f"{image_id}: '{field}' names an unknown class (not in 0..999)", value=bad)
    return value


@dataclass(frozen=True)
class Decision:
    """What the reviewer decided for one image."""

    image_id: str
    right: frozenset[int]
    wrong: frozenset[int]
    added: frozenset[int]
    no_class: bool
    not_sure: bool


def read_decisions(path: str | Path, key: dict) -> list[Decision]:
    """Finished decisions of the page's export file, checked against the export they were made for."""
    path = Path(path)
    data = _read_json(path, "decisions file")
    if data.get("export_id") != key["export_id"]:
        raise InputError(
            path,
            f"made for another export ({data.get('export_id')!r}); this review folder is {key['export_id']!r}",
        )
    raw = data.get("decisions")
    if not isinstance(raw, dict):
        raise InputError(path, "'decisions' must be an object keyed by image id")
    decisions, seen = [], {}
    for raw_id, entry in sorted(raw.items()):
        image_id = normalize_image_id(raw_id, path, entry=raw_id)
        if image_id in seen:
            raise InputError(path, f"the same image as entry {seen[image_id]}: one decision per image", entry=raw_id)
        seen[image_id] = raw_id
        if image_id not in key["images"]:
            raise InputError(path, "decision for an image that is not in this export", value=raw_id)
        if not isinstance(entry, dict):
            raise InputError(path, f"{image_id}: a decision must be an object", value=entry)
        if not entry.get("done"):
            continue
        candidates = {c["class"] for c in key["images"][image_id]["candidates"]}
        marks = entry.get("candidates", {})
        if not isinstance(marks, dict) or any(m not in ("right", "wrong") for m in marks.values()):
            raise InputError(path, f"{image_id}: 'candidates' must map class indices to right or wrong", value=marks)
        try:
            marked = {int(index): mark for index, mark in marks.items()}
        except ValueError:
            raise InputError(path, f"{image_id}: 'candidates' keys must be class indices", value=marks) from None
        stray = sorted(set(marked) - candidates)
        if stray:
            raise InputError(path, f"{image_id}: marks a class that was not a candidate of this image", value=stray)
        decision = Decision(
            image_id=image_id,
            right=frozenset(i for i, m in marked.items() if m == "right"),
            wrong=frozenset(i for i, m in marked.items() if m == "wrong"),
            added=frozenset(_class_list(path, image_id, "added", entry.get("added", []))),
            no_class=entry.get("no_class") is True,
            not_sure=entry.get("not_sure") is True,
        )
        if not (decision.right or decision.added or decision.no_class or decision.not_sure):
            raise InputError(path, f"{image_id}: no class right or added; mark 'no ImageNet class' or 'not sure'")
        decisions.append(decision)
    return decisions


def outcome(decision: Decision, before: frozenset[int], models: frozenset[int]) -> tuple[str, frozenset[int]]:
    """(outcome, new labels) of one decision; `models` are the classes the disagreeing models proposed."""
    if decision.not_sure:
        return "not sure", before
    after = frozenset() if decision.no_class else decision.right | decision.added
    if after == before:
        return "kept label", after
    if after and after <= models:
        return "took model", after
    if after <= before | models and after & models and after & before:
        return "combined", after
    return "other", after


def import_review(
    review: str | Path,
    decisions_path: str | Path,
    truth: GroundTruth,
    out: str | Path,
    *,
    reviewer: str,
    version: str | None = None,
) -> dict:
    """Write the new label file `out` (+ `.provenance.json`, `.summary.md`, `.summary.png`); return provenance.

    `truth` must be the parent label set of the export (its hash is checked). Images not reviewed keep
    their labels; "not sure" keeps them and sets the row's `not_sure`; "no ImageNet class" empties them.
    """
    key_path = Path(review) / "key.json"
    key = _read_json(key_path, "review key")
    if truth.sha256 != key["parent"]["sha256"]:
        raise InputError(key_path, f"the export was made from other labels ({key['parent']['name']}), not {truth.name}")
    decisions = read_decisions(decisions_path, key)
    today = date.today().isoformat()
    rows = {r["image_id"]: r for r in truth.to_records()}
    changes, counts = [], Counter()
    for decision in decisions:
        image = key["images"][decision.image_id]
        before = frozenset(image["labels"])
        models = frozenset(c["class"] for c in image["candidates"] if any(s.startswith("model:") for s in c["sources"]))
        result, after = outcome(decision, before, models)
        counts[image["category"], result] += 1
        row = rows[decision.image_id]
        row["labels"], row["not_sure"] = sorted(after), row["not_sure"] or decision.not_sure
        if result != "kept label":
            row["review"] = {"outcome": result, "before": sorted(before), "reviewer": reviewer, "date": today}
            changes.append(
                {"image_id": decision.image_id, "outcome": result, "before": sorted(before), "after": sorted(after)}
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, "".join(json.dumps(row) + "\n" for row in rows.values()))
    new_hash = read_regt_jsonl(out).sha256
    summary = summary_table(counts)
    provenance = {
        "version": version or f"{Path(truth.name.split(':')[-1]).stem}+review-{today}",
        "labels_sha256": new_hash,
        "parent": key["parent"],
        "export_id": key["export_id"],
        "export_settings": key["settings"],
        "reviewer": reviewer,
        "date": today,
        "reviewed": len(decisions),
        "changed": len(changes),
        "summary": summary,
        "changes": changes,
    }
    stem = out.with_suffix("")
    write_text(f"{stem}.provenance.json", json.dumps(provenance, indent=1))
    write_text(f"{stem}.summary.md", summary_markdown(summary))
    plot_summary(summary, Path(f"{stem}.summary.png"))
    return provenance


def summary_table(counts: Counter) -> dict[str, dict[str, int]]:
    """{category: {outcome: count}} for the categories with a reviewed image, in the paper's order."""
    return {
        category: {name: counts[category, name] for name in OUTCOMES}
        for category in LEAF_CATEGORIES
        if any(counts[category, name] for name in OUTCOMES)
    }


def summary_markdown(summary: dict[str, dict[str, int]]) -> str:
    lines = ["| category | reviewed | " + " | ".join(OUTCOMES) + " |", "|---|---:|" + "---:|" * len(OUTCOMES)]
    for category, row in summary.items():
        total = sum(row.values())
        cells = [f"{row[name]} ({100 * row[name] / total:.0f}%)" for name in OUTCOMES]
        lines.append(f"| {category} | {total} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_summary(summary: dict[str, dict[str, int]], path: Path) -> None:
    """Horizontal stacked bars of the outcome shares per category (the paper's Figure 7 layout)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = list(summary)
    figure, axes = plt.subplots(figsize=(8, 1.6 + 0.45 * len(categories)))
    left = [0.0] * len(categories)
    for name, colour in zip(OUTCOMES, ("#1b9e77", "#7570b3", "#e6ab02", "#d95f02", "#999999"), strict=True):
        shares = [100 * summary[c][name] / sum(summary[c].values()) for c in categories]
        axes.barh(categories, shares, left=left, color=colour, label=name)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of reviewed images")
    axes.invert_yaxis()
    figure.legend(ncol=len(OUTCOMES), loc="upper center", frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (1.6 + 0.45 * len(categories))))
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
