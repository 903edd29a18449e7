"""The user's own ImageNet validation images, found where they are and read lazily by image id.

ImageNet's terms forbid redistributing the pixels, so nothing is copied: a source only indexes which image
ids it holds, and a task reads an image when a request needs it. Two kinds of source:

- a folder of `ILSVRC2012_val_XXXXXXXX.JPEG` files, flat or in class subfolders
  (`val/n01440764/ILSVRC2012_val_00000293.JPEG`), found recursively by file name;
- a `datasets` source — a Hub repo id such as `ILSVRC/imagenet-1k` (with the user's own access; only its
  validation split is read) or a local dataset folder — joined by the file name its `image` column records
  (`ILSVRC2012_val_00000293_n01440764.JPEG`), never by row position.

A file name may carry the image's WordNet id (`_n01440764`); it must then be the image's original class,
so a source whose names and contents disagree is refused. The same image id twice is an error.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from .errors import InputError
from .labels.ground_truth import HUB_REPO_ID, original_labels
from .labels.vocabulary import wordnet_ids

IMAGES_ENV = "IMAGENET_REGT_IMAGES"
_FILE = re.compile(r"(ILSVRC2012_val_[0-9]{8})(?:_(n[0-9]{8}))?\.(?:jpe?g|png)", re.IGNORECASE)
SPLIT = "validation"


def image_id_of(name: str, source: str | Path) -> str | None:
    """The image id a file name stands for (None for other files); a WordNet id in it must be the image's."""
    match = _FILE.fullmatch(name)
    if not match:
        return None
    image_id, wnid = match.group(1), match.group(2)
    if image_id not in original_labels():
        raise InputError(source, "not an ImageNet validation image id", value=name)
    expected = wordnet_ids()[original_labels()[image_id]]
    if wnid is not None and wnid != expected:
        raise InputError(source, f"the file name says class {wnid}, but {image_id} is {expected}", value=name)
    return image_id


class ImageFolder:
    """Validation images under a folder, indexed by id (one recursive scan)."""

    def __init__(self, folder: Path):
        self.name = str(folder)
        self.files: dict[str, Path] = {}
        for root, folders, names in os.walk(folder, followlinks=True):
            folders.sort()  # a stable order, so the same folder always reports the same duplicate
            for name in sorted(names):
                image_id = image_id_of(name, Path(root) / name)
                if image_id is None:
                    continue
                if image_id in self.files:
                    raise InputError(Path(root) / name, f"the same image as {self.files[image_id]}", value=image_id)
                self.files[image_id] = Path(root) / name
        if not self.files:
            raise InputError(folder, "no ILSVRC2012_val_*.JPEG files in this folder or its subfolders")

    def ids(self) -> frozenset[str]:
        return frozenset(self.files)

    def where(self, image_id: str) -> str:
        return str(self.files[image_id])

    def read(self, image_id: str) -> bytes:
        try:
            return self.files[image_id].read_bytes()
        except OSError as error:
            raise InputError(self.files[image_id], f"cannot be read: {error.strerror}") from None


class ImageDataset:
    """The validation split of a `datasets` source, joined by the file name of each row's image."""

    def __init__(self, source: str):
        import datasets
        import pyarrow.compute as pc

        self.name = source
        try:
            data = datasets.load_dataset(source, split=SPLIT)
        except Exception as error:  # offline, gated, not a dataset: one line, whatever `datasets` raised
            raise InputError(source, f"cannot load its {SPLIT} split with `datasets`: {error}") from None
        if "image" not in data.column_names:
            raise InputError(source, f"its {SPLIT} split has no 'image' column (has {', '.join(data.column_names)})")
        self.data = data.cast_column("image", datasets.Image(decode=False))
        paths = pc.struct_field(self.data.data.column("image").combine_chunks(), "path").to_pylist()
        self.rows: dict[str, int] = {}
        for row, path in enumerate(paths):
            image_id = image_id_of(Path(path or "").name, f"{source} row {row + 1}")
            if image_id is None:
                raise InputError(source, "an image's file name is not ILSVRC2012_val_*.JPEG", row=row + 1, value=path)
            if image_id in self.rows:
                raise InputError(source, f"the same image as row {self.rows[image_id] + 1}", row=row + 1, value=path)
            self.rows[image_id] = row

    def ids(self) -> frozenset[str]:
        return frozenset(self.rows)

    def where(self, image_id: str) -> str:
        return f"{self.name} row {self.rows[image_id] + 1} ({image_id})"

    def read(self, image_id: str) -> bytes:
        image = self.data[self.rows[image_id]]["image"]
        if image.get("bytes"):
            return image["bytes"]
        try:
            return Path(image["path"]).read_bytes()
        except (OSError, TypeError):
            raise InputError(self.where(image_id), "has no image bytes and no readable file") from None


ImageSource = ImageFolder | ImageDataset


def open_images(location: str) -> ImageSource:
    """A folder of JPEGs, a local dataset folder, or a Hub dataset repo id, indexed now."""
    path = Path(location).expanduser()
    if path.is_dir():
        holds_dataset = any(path.glob("*.parquet")) or any(path.glob("*/*.parquet")) or any(path.glob("*.arrow"))
        return ImageDataset(str(path)) if holds_dataset else ImageFolder(path)
    if not path.exists() and HUB_REPO_ID.fullmatch(location):
        return ImageDataset(location)
    raise InputError(location, "not a folder of validation images, a dataset folder or a Hub dataset repo id")


def load(images: ImageSource, image_id: str):
    """An image of a source as RGB; one that cannot be read or decoded is named by file or row."""
    from PIL import Image, UnidentifiedImageError

    data = images.read(image_id)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InputError(images.where(image_id), f"cannot be decoded as an image: {error}") from None
