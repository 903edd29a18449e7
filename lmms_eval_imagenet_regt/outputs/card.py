"""The dataset card (README.md with YAML front matter) written next to a built dataset.

The static text is `hf_dataset_card/card_template.md` (shipped in the package); the builder fills in the
real counts, the label source and its hash.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from ..files import write_text
from ..labels.categories import LEAF_CATEGORIES
from ..labels.equivalences import EquivalenceSet
from ..labels.ground_truth import GroundTruth


def card_template() -> str:
    return resources.files("lmms_eval_imagenet_regt.hf_dataset_card").joinpath("card_template.md").read_text("utf-8")


def write_card(out_dir: Path, truth: GroundTruth, report, equivalences: EquivalenceSet, with_images: bool) -> Path:
    counts = {name: report.categories.get(name, 0) for name in LEAF_CATEGORIES}
    front = {
        "license": "other",
        "license_name": "imagenet-terms-of-access",
        "license_link": "https://image-net.org/download.php",
        "task_categories": ["image-classification"],
        "pretty_name": "ImageNet-1k validation labels for the ReGT protocol",
        "tags": ["imagenet", "multi-label", "evaluation", "lmms-eval"],
        "size_categories": ["10K<n<100K"]
        if report.rows >= 10_000
        else ["1K<n<10K"]
        if report.rows >= 1000
        else ["n<1K"],
        "extra_gated_prompt": "The images are ImageNet's: you agree to ImageNet's terms of access (non-commercial "
        "research and education) and confirm that you have your own right to use the images.",
        "configs": [
            {"config_name": "default", "data_files": [{"split": "validation", "path": "data/validation-*.parquet"}]}
        ]
        + (
            [{"config_name": "labels", "data_files": [{"split": "validation", "path": "labels/validation-*.parquet"}]}]
            if with_images
            else []
        ),
    }
    body = card_template().format(
        rows=report.rows,
        with_images="labels joined to images" if with_images else "labels only (no pixels)",
        label_source=truth.name,
        label_set=truth.label_set,
        labels_count=truth.set_size,
        labels_sha256=truth.set_sha256,
        equivalences=equivalences.source,
        counts_table="\n".join(f"| {name} | {count} |" for name, count in counts.items()),
        skipped=len(report.skipped),
    )
    return write_text(out_dir / "README.md", f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n{body}")
