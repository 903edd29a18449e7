"""Shared test set-up: offline Hub settings and the real public data in ../shared/data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[variable] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IMAGENET_REGT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public test data; CI requires it, elsewhere its absence skips the test."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared test data at {SHARED_DATA}")
        pytest.skip(f"real test data not found at {SHARED_DATA} (set IMAGENET_REGT_SHARED_DATA)")
    return SHARED_DATA


def _first_images(shared_data: Path, folder: Path, count: int) -> Path:
    """Copy the first `count` real validation images of the shared set (sorted by id) into `folder`."""
    for path in sorted((shared_data / "imagenet_val_1300" / "images").iterdir())[:count]:
        shutil.copy(path, folder / path.name)
    return folder


def _joined_real_dataset(shared_data: Path, images: Path, out: Path) -> Path:
    """The joined dataset of `images` with their ReaL labels, as the tasks read it."""
    from lmms_eval_imagenet_regt.outputs.dataset import build_dataset

    build_dataset(f"real={shared_data / 'real' / 'real.json'}", out, images=images, subset=True)
    return out


@pytest.fixture(scope="session")
def eight_images(shared_data, tmp_path_factory) -> Path:
    """A folder with the first 8 real validation images of the shared set (sorted by id)."""
    return _first_images(shared_data, tmp_path_factory.mktemp("images"), 8)


@pytest.fixture(scope="session")
def real_dataset(eight_images, shared_data, tmp_path_factory) -> Path:
    """The joined dataset (ReaL labels standing in for ReGT) of the 8 images, as the tasks read it."""
    return _joined_real_dataset(shared_data, eight_images, tmp_path_factory.mktemp("dataset"))


@pytest.fixture(scope="session")
def sixteen_image_dataset(shared_data, tmp_path_factory) -> Path:
    """The joined dataset (ReaL labels) of the first 16 real validation images: 12 S+, 2 M+, 2 S-."""
    images = _first_images(shared_data, tmp_path_factory.mktemp("sixteen-images"), 16)
    return _joined_real_dataset(shared_data, images, tmp_path_factory.mktemp("sixteen-dataset"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Class-embedding caches in a per-session folder, so tests see cold and warm caches they made."""
    monkeypatch.setenv("IMAGENET_REGT_CACHE", str(tmp_path_factory.getbasetemp() / "embedding-cache"))


@pytest.fixture(scope="session")
def scripted_answers(real_dataset, tmp_path_factory) -> Path:
    """Free-text answers for the 8 images: exact, paraphrased, out-of-list, empty and garbage."""
    import json

    from lmms_eval_imagenet_regt.outputs.dataset import read_labels

    answers = [
        "Kayak",
        "Answer: chow chow.",
        "<think>It has six legs.</think>tiger beetle",
        "",
        "zxqv wrrrt",
        "a railroad car",
        "vending machine",
        "giant panda bear",
    ]
    path = tmp_path_factory.mktemp("answers") / "free.jsonl"
    ids = sorted(read_labels(real_dataset).images)
    path.write_text("".join(json.dumps({"image_id": i, "answer": a}) + "\n" for i, a in zip(ids, answers, strict=True)))
    return path


@pytest.fixture(scope="session")
def scripted_runs(real_dataset, scripted_answers, tmp_path_factory) -> dict:
    """lmms-eval runs of the replay model on the 8 images: CW, CW+, OW (free text) and MC (letters)."""
    import json
    import string

    from lmms_eval_imagenet_regt import ClassVocabulary, EquivalenceSet
    from lmms_eval_imagenet_regt.outputs.dataset import read_labels
    from lmms_eval_imagenet_regt.protocol.options import sample_options
    from tests.lmms_run import run_lmms_eval

    labels = read_labels(real_dataset)
    names = ClassVocabulary.load().names
    folder = tmp_path_factory.mktemp("scripted")
    with open(folder / "mc.jsonl", "w") as handle:
        for index, image_id in enumerate(sorted(labels.images)):
            record = labels[image_id]
            options = sample_options(record, "imgt_random", 4, 0, EquivalenceSet.load())
            letter = string.ascii_uppercase[options.index(record.imgt)]
            wrong = next(other for other in "ABCD" if other != letter)
            answer = [
                letter,
                f"({letter.lower()})",
                f"{letter}. {names[record.imgt]}",
                f"Answer: {letter}",
                wrong,
                "I cannot tell",
                names[record.imgt],
                "",
            ][index]
            handle.write(json.dumps({"image_id": image_id, "answer": answer}) + "\n")
    env = {"IMAGENET_REAL_DATA": str(real_dataset)}
    replay = ["--model", "imagenet_regt_replay", "--model_args"]
    free = run_lmms_eval(
        [*replay, f"answers={scripted_answers}", "--tasks", "imagenet_real_cw,imagenet_real_cwplus,imagenet_real_ow"],
        folder / "free-out",
        env,
    )
    mc = run_lmms_eval(
        [*replay, f"answers={folder / 'mc.jsonl'}", "--tasks", "imagenet_real_mc_imgt_random", "--batch_size", "4"],
        folder / "mc-out",
        env,
    )
    return {**free, **mc}
