"""The dataset the tasks read: built from real images and labels, loadable, validated, with a real card."""

import json
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from lmms_eval_imagenet_regt import InputError, load_ground_truth
from lmms_eval_imagenet_regt.outputs.dataset import build_dataset, push_to_hub, read_labels


@pytest.fixture(scope="module")
def built_1300(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds1300")
    command = [
        sys.executable,
        "-m",
        "lmms_eval_imagenet_regt",
        "build-dataset",
        "--labels",
        "real",
        "--images",
        str(shared_data / "imagenet_val_1300" / "images"),
        "--out",
        str(out),
        "--subset",
        "--equivalences",
        "none",
    ]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return out, printed


def test_1300_images_with_real_labels(built_1300):
    import datasets

    out, printed = built_1300
    assert "wrote 1300 rows" in printed
    joined = datasets.load_dataset(str(out))["validation"]
    shards = sorted(str(p) for p in (out / "data").glob("*.parquet"))
    assert len(shards) == 2  # 1000 rows per shard
    direct = datasets.load_dataset("parquet", data_files={"validation": shards})["validation"]
    assert joined.num_rows == direct.num_rows == 1300
    assert isinstance(joined.features["image"], datasets.Image)
    assert joined.features["imgt"].names[0] == "n01440764"
    assert joined.features["labels"].feature.num_classes == 1000
    counts = Counter(joined["category"])
    assert (counts["S+"], counts["S-"], counts["M+"] + counts["M-"], counts["N"]) == (1037, 68, 138, 57)
    row = joined[0]
    assert row["image_id"] == "ILSVRC2012_val_00000347" and row["imgt"] == 472 and row["labels"] == [472]
    assert row["image"].size == (227, 227)
    assert row["image"].convert("RGB").getpixel((100, 100)) != (0, 0, 0)
    labels_only = datasets.load_dataset(str(out), "labels")["validation"]
    assert "image" not in labels_only.features and labels_only.num_rows == 1300
    # one hash for one label set: the dataset's rows carry the hash of the whole ReaL set they were cut from
    real = load_ground_truth("real")
    assert row["labels_sha256"] == real.sha256 == read_labels(out).set_sha256 != read_labels(out).sha256
    assert (row["label_set"], row["labels_count"]) == ("real", 50_000)


def test_card_is_valid_metadata_with_the_real_counts(built_1300):
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    out, _ = built_1300
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "other" and card.data.task_categories == ["image-classification"]
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert set(configs) == {"default", "labels"}
    text = card.text
    assert "| S+ | 1037 |" in text and "| S- | 68 |" in text and "| N | 57 |" in text
    assert "1300 ImageNet-1k validation images" in text
    assert "## Scoring rules" in text and "terms of access" in text and "@inproceedings{kisel2026mllm" in text
    assert load_ground_truth("real").sha256 in text and "Label set: `real`" in text and "50000 labelled" in text


def test_push_dry_run_lists_every_file(built_1300):
    out, _ = built_1300
    files = push_to_hub(out, "me/imagenet-regt-joined", dry_run=True)
    assert [f.split(" ")[0] for f in files] == [
        "README.md",
        "data/validation-00000-of-00002.parquet",
        "data/validation-00001-of-00002.parquet",
        "labels/validation-00000-of-00001.parquet",
    ]


def _folder(shared_data, tmp_path, count=3):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted((shared_data / "imagenet_val_1300" / "images").iterdir())[:count]:
        shutil.copy(path, folder / path.name)
    return folder


def test_missing_images_are_an_error_unless_subset(shared_data, tmp_path):
    folder = _folder(shared_data, tmp_path)
    labels = tmp_path / "labels.jsonl"
    ids = sorted(p.stem for p in folder.iterdir()) + ["ILSVRC2012_val_00000001"]
    labels.write_text("\n".join(json.dumps({"image_id": i, "labels": []}) for i in ids))
    with pytest.raises(InputError, match=r"1 labelled images have no file: ILSVRC2012_val_00000001 \(use --subset"):
        build_dataset(str(labels), tmp_path / "out", images=folder)
    report = build_dataset(str(labels), tmp_path / "out", images=folder, skip_bad=True)
    assert report.rows == 3 and report.skipped == ["ILSVRC2012_val_00000001: no image file"]


def test_bad_image_files(shared_data, tmp_path):
    folder = _folder(shared_data, tmp_path)
    broken = folder / "ILSVRC2012_val_00000001.JPEG"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(InputError, match=r"ILSVRC2012_val_00000001\.JPEG: cannot be decoded as an image"):
        build_dataset("real", tmp_path / "out", images=folder, subset=True)
    report = build_dataset("real", tmp_path / "out", images=folder, subset=True, skip_bad=True)
    assert report.rows == 3 and len(report.skipped) == 1 and "ILSVRC2012_val_00000001.JPEG" in report.skipped[0]
    broken.unlink()
    (folder / "ILSVRC2012_val_00099999.JPEG").write_bytes(b"x")
    with pytest.raises(InputError, match=r"ILSVRC2012_val_00099999\.JPEG: not an ImageNet validation image id"):
        build_dataset("real", tmp_path / "out", images=folder, subset=True)
    (folder / "ILSVRC2012_val_00099999.JPEG").unlink()
    first = sorted(folder.iterdir())[0]
    shutil.copy(first, folder / (first.stem + ".jpeg"))
    with pytest.raises(InputError, match=r"ILSVRC2012_val_00000347\.jpeg: the same image as .*347\.JPEG"):
        build_dataset("real", tmp_path / "out", images=folder, subset=True)


def test_bad_label_values_name_file_and_line(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"image_id": "ILSVRC2012_val_00000001", "labels": [1000]}\n')
    with pytest.raises(InputError, match=r"labels\.jsonl:1: 'labels': class index outside 0\.\.999 \(got 1000\)"):
        build_dataset(str(labels), tmp_path / "out")


def test_a_build_that_fails_half_way_leaves_the_previous_dataset_whole(shared_data, tmp_path):
    """The second build dies on an undecodable image after writing its first shard: the folder still holds
    the first build, every file of it, and no temporary folder is left beside it."""
    folder = _folder(shared_data, tmp_path, count=4)
    out = tmp_path / "dataset"
    build_dataset("real", out, images=folder, subset=True, shard_size=2)
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    (folder / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"not a jpeg")  # sorts first, fails in shard 1
    shutil.copy(sorted(folder.iterdir())[1], folder / "ILSVRC2012_val_00049999.JPEG")  # sorts last: shard 2
    (folder / "ILSVRC2012_val_00000001.JPEG").rename(folder / "ILSVRC2012_val_00049998.JPEG")
    with pytest.raises(InputError, match=r"ILSVRC2012_val_00049998\.JPEG: cannot be decoded as an image"):
        build_dataset("real", out, images=folder, subset=True, shard_size=2)
    assert {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "images"]
