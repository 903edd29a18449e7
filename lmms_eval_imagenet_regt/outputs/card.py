"""The dataset card (README.md) written next to a built dataset, through huggingface_hub's `DatasetCard`.

The text is `hf_dataset_card/card_template.md` (shipped in the package, a Jinja template); the metadata —
license, gating prompt, `configs` (which files make which configuration) and `dataset_info` (features and
split sizes, written by `datasets` itself) — is a `DatasetCardData`, so the Hub reads the card as it
documents.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..files import write_text
from ..labels.categories import LEAF_CATEGORIES
from ..labels.equivalences import EquivalenceSet
from ..labels.ground_truth import GroundTruth

GATING_PROMPT = (
    "The images are ImageNet's: you agree to ImageNet's terms of access (non-commercial research and education) "
    "and confirm that you have your own right to use the images."
)


def card_template() -> str:
    return resources.files("lmms_eval_imagenet_regt.hf_dataset_card").joinpath("card_template.md").read_text("utf-8")


def write_card(
    out_dir: Path, truth: GroundTruth, report, equivalences: EquivalenceSet, features: dict, rows: dict[str, int]
) -> Path:
    """`features` and `rows`: each configuration's `datasets.Features` and row count (`default`, `labels`)."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCard, DatasetCardData

    folders = {"default": "data", "labels": "labels"}
    data = DatasetCardData(
        license="other",
        license_name="imagenet-terms-of-access",
        license_link="https://image-net.org/download.php",
        task_categories=["image-classification"],
        pretty_name="ImageNet-1k validation labels for the ReGT protocol",
        tags=["imagenet", "multi-label", "evaluation", "lmms-eval"],
        size_categories=["10K<n<100K" if report.rows >= 10_000 else "1K<n<10K" if report.rows >= 1000 else "n<1K"],
        extra_gated_prompt=GATING_PROMPT,
        configs=[
            {
                "config_name": name,
                "data_files": [{"split": "validation", "path": f"{folders[name]}/validation-*.parquet"}],
            }
            for name in features
        ],
    )
    infos = {
        name: DatasetInfo(
            features=features[name],
            splits=SplitDict({"validation": SplitInfo("validation", num_examples=rows[name])}),
        )
        for name in features
    }
    DatasetInfosDict(infos).to_dataset_card_data(data)
    counts = {name: report.categories.get(name, 0) for name in LEAF_CATEGORIES}
    card = DatasetCard.from_template(
        data,
        template_str=card_template(),
        rows=report.rows,
        with_images="labels joined to images" if "labels" in features else "labels only (no pixels)",
        label_source=truth.name,
        label_set=truth.label_set,
        labels_count=truth.set_size,
        labels_sha256=truth.set_sha256,
        equivalences=equivalences.source,
        counts_table="\n".join(f"| {name} | {count} |" for name, count in counts.items()),
        skipped=len(report.skipped),
    )
    return write_text(out_dir / "README.md", str(card))
