"""Building the dataset the tasks read: labels (any supported format) joined to the user's own images.

ImageNet's terms forbid redistributing the pixels, so labels are published alone and each user joins them
to their copy of the validation images. Output folder (loads with `datasets.load_dataset(folder)`):

    README.md                               dataset card with the real counts and the labels' hash
    data/validation-0000i-of-0000n.parquet  joined rows (with images) or the labels alone
    labels/validation-00000-of-00001.parquet  the labels alone (written too when images are joined)

Rows are written shard by shard, so the 50,000-image set never sits in memory. Images are stored as their
original JPEG bytes (no re-encoding) after a decode check. The folder is built beside `out` and swapped in
only when complete, so a build that fails half-way leaves the previous dataset as it was.

Every row records the label set it holds (`label_set`: regt, real, ...) and the hash and size of the whole
label set the rows were cut from (`labels_sha256`, `labels_count`): what tasks check and runs report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..errors import InputError
from ..files import atomic_folder
from ..images import load, open_images
from ..labels.categories import image_category
from ..labels.equivalences import EquivalenceSet
from ..labels.ground_truth import GroundTruth, load_ground_truth
from ..labels.vocabulary import wordnet_ids
from .card import write_card

SPLIT = "validation"


def features(with_images: bool):
    """The dataset's `datasets.Features`; class labels use WordNet ids, the only unique class names."""
    from datasets import ClassLabel, Features, Image, List, Value

    classes = ClassLabel(names=list(wordnet_ids()))
    columns = {
        "image_id": Value("string"),
        "imgt": classes,
        "labels": List(classes),
        "not_sure": Value("bool"),
        "category": Value("string"),
        "label_source": Value("string"),
        "label_set": Value("string"),
        "labels_sha256": Value("string"),
        "labels_count": Value("int64"),
    }
    if with_images:
        columns["image"] = Image()
    return Features(columns)


@dataclass
class BuildReport:
    out_dir: Path
    rows: int
    categories: dict[str, int]
    labels_sha256: str
    labelled_without_image: int = 0
    images_without_label: int = 0
    skipped: list[str] = field(default_factory=list)


def build_dataset(
    labels: str,
    out_dir: str | Path,
    *,
    images: str | Path | None = None,
    equivalences: str = "default",
    shard_size: int = 1000,
    subset: bool = False,
    skip_bad: bool = False,
) -> BuildReport:
    """Write the labels dataset, and with `images` the joined dataset the tasks read.

    A labelled image with no file in `images` is an error (a partial copy of ImageNet would silently
    change the score), unless `subset` builds only the images present, or `skip_bad` skips and reports.
    Images without a label are left out and counted: ReGT covers only part of the validation set.
    """
    source = load_ground_truth(labels)
    out_dir = Path(out_dir)
    eq = EquivalenceSet.load(equivalences)
    files = open_images(str(images)) if images is not None else None
    present = set(files.ids()) if files is not None else set()
    ids = sorted(source.images) if files is None else sorted(set(source.images) & present)
    missing = [] if files is None else sorted(set(source.images) - present)
    if missing and not (subset or skip_bad):
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            images,
            f"{len(missing)} labelled images have no file: {shown} (use --subset to build only the images present)",
        )
    if not ids:
        raise InputError(images or labels, "no image has both a label and an image file")
    truth = source.subset(ids)
    report = BuildReport(out_dir, 0, {}, truth.set_sha256)
    if skip_bad and not subset:
        report.skipped += [f"{image_id}: no image file" for image_id in missing]
    if files is not None:
        report.labelled_without_image = len(source) - len(ids)
        report.images_without_label = len(present - set(source.images))

    def rows(with_images: bool) -> Iterator[dict]:
        for image_id in ids:
            record = truth[image_id]
            row = {
                "image_id": image_id,
                "imgt": record.imgt,
                "labels": sorted(record.labels),
                "not_sure": record.not_sure,
                "category": image_category(record, eq),
                "label_source": truth.name,
                "label_set": truth.label_set,
                "labels_sha256": truth.set_sha256,
                "labels_count": truth.set_size,
            }
            if with_images:
                try:
                    load(files, image_id)  # decodes: an undecodable image is named now, not at evaluation
                    row["image"] = {"bytes": files.read(image_id), "path": f"{image_id}.JPEG"}
                except InputError as error:
                    if not skip_bad:
                        raise
                    report.skipped.append(str(error))
                    continue
            yield row

    report.categories = dict(Counter(image_category(truth[i], eq) for i in ids))
    with atomic_folder(out_dir) as folder:
        if files is not None:
            joined = tqdm(rows(True), total=len(ids), desc="Joining images", unit="image", disable=len(ids) < 2000)
            report.rows = _write_shards(joined, folder / "data", features(True), len(ids), shard_size)
            labels_rows = _write_shards(rows(False), folder / "labels", features(False), len(ids), len(ids))
            configs = {"default": features(True), "labels": features(False)}
            counts = {"default": report.rows, "labels": labels_rows}
        else:
            report.rows = _write_shards(rows(False), folder / "data", features(False), len(ids), len(ids))
            configs, counts = {"default": features(False)}, {"default": report.rows}
        write_card(folder, truth, report, eq, configs, counts)
    return report


def _write_shards(rows: Iterator[dict], folder: Path, feats, total: int, shard_size: int) -> int:
    folder.mkdir(parents=True)
    schema = feats.arrow_schema
    count = (total + shard_size - 1) // shard_size
    written, shard, batch = 0, 0, []

    def flush() -> None:
        nonlocal shard, batch
        path = folder / f"{SPLIT}-{shard:05d}-of-{count:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(batch, schema=schema), path)
        shard, batch = shard + 1, []

    for row in rows:
        batch.append(row)
        written += 1
        if len(batch) == shard_size:
            flush()
    if batch or written == 0:
        flush()
    return written


def read_labels(folder: str | Path) -> GroundTruth:
    """The labels of a built dataset folder (labels-only part when present)."""
    return load_ground_truth(f"regt={folder}")


def push_to_hub(out_dir: str | Path, repo_id: str, *, private: bool = True, dry_run: bool = False) -> list[str]:
    """Upload a built dataset folder to a Hub dataset repo, private by default and gated (ImageNet's terms).

    Returns the files that are (or, with `dry_run`, would be) uploaded, as `path (bytes)`.
    """
    out_dir = Path(out_dir)
    if not (out_dir / "README.md").is_file():
        raise InputError(out_dir, "not a dataset folder written by build-dataset (no README.md)")
    files = [f"{p.relative_to(out_dir)} ({p.stat().st_size} bytes)" for p in sorted(out_dir.rglob("*")) if p.is_file()]
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(out_dir), repo_id=repo_id, repo_type="dataset")
    # the gating the card promises: access asks for agreement to ImageNet's terms first
    api.update_repo_settings(repo_id, gated="auto", repo_type="dataset")
    return files
