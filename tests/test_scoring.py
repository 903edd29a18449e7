"""Scoring rules, each checked against values worked out by hand (see the comments)."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from lmms_eval_imagenet_regt import (
    EquivalenceSet,
    GroundTruth,
    ImageLabels,
    InputError,
    mean_interval,
    score_predictions,
)
from lmms_eval_imagenet_regt.labels.ground_truth import image_id_for_position, load_ground_truth


def _image(n, imgt, labels, not_sure=False):
    return ImageLabels(image_id_for_position(n), imgt, frozenset(labels), not_sure)


# image: (ImGT, ReGT labels) → category under the default equivalences
HAND = GroundTruth(
    name="hand",
    images={
        r.image_id: r
        for r in [
            _image(0, 620, {620}),  # S+
            _image(1, 5, {7}),  # S-
            _image(2, 10, {10, 20}),  # M+
            _image(3, 30, set()),  # N
            _image(4, 836, {836, 837}),  # S+ once 836 ~ 837 collapse; M+ without equivalences
            _image(5, 40, {41, 42}),  # M-
            _image(6, 50, set(), not_sure=True),  # "not sure" only: N
            _image(7, 744, {744}),  # S+
            _image(8, 5, {5}),  # S+
        ]
    },
)
PREDICTIONS = {
    image_id_for_position(0): 681,  # notebook for laptop: right on both through E
    image_id_for_position(1): 7,  # ReGT right, ImGT wrong
    image_id_for_position(2): 20,  # ReGT right, ImGT wrong
    image_id_for_position(3): 31,  # N: ReGT right by rule, ImGT wrong
    image_id_for_position(4): None,  # unanswered: wrong on both
    image_id_for_position(5): 41,  # ReGT right, ImGT wrong
    image_id_for_position(6): 50,  # right on both
    image_id_for_position(7): [657, 744],  # the name "missile": right on both
    image_id_for_position(8): 5,  # right on both
}


def test_regt_convention_with_default_equivalences():
    table = score_predictions(PREDICTIONS, HAND, EquivalenceSet.load())
    c = table.categories
    # A: ImGT right on images 0, 6, 7, 8; ReGT right on all but 4; both on 0, 6, 7, 8
    assert (c["A"].count, c["A"].imgt, c["A"].labels, c["A"].both) == (9, 4 / 9, 8 / 9, 4 / 9)
    assert (c["S+"].count, c["S+"].imgt, c["S+"].labels, c["S+"].both) == (4, 3 / 4, 3 / 4, 3 / 4)  # 0, 4, 7, 8
    assert (c["S-"].count, c["S-"].imgt, c["S-"].labels) == (1, 0.0, 1.0)
    assert (c["S"].count, c["S"].imgt, c["S"].labels) == (5, 3 / 5, 4 / 5)
    assert (c["M+"].count, c["M+"].imgt, c["M+"].labels) == (1, 0.0, 1.0)
    assert (c["M-"].count, c["M-"].imgt, c["M-"].labels) == (1, 0.0, 1.0)
    assert (c["M"].count, c["M"].imgt, c["M"].labels) == (2, 0.0, 1.0)
    assert (c["N"].count, c["N"].imgt, c["N"].labels) == (2, 1 / 2, 1.0)
    # per class (by ImGT): 620:1 5:½ 10:0 30:0 836:0 40:0 50:1 744:1 → 3.5/8; ReGT: all 1 but 836 → 7/8
    assert table.per_class_mean_imgt == 3.5 / 8
    assert table.per_class_mean_labels == 7 / 8
    assert (table.images_scored, table.unanswered, table.missing, table.outside_ground_truth) == (9, 1, 0, 0)
    assert c["A"].oop is None


def test_without_equivalences_laptop_is_not_notebook_and_sunglasses_are_two_labels():
    table = score_predictions(PREDICTIONS, HAND, EquivalenceSet.empty())
    c = table.categories
    # image 0 is now wrong on both; image 4 moves from S+ to M+; image 7 stays right ("missile" holds 744)
    assert (c["A"].imgt, c["A"].labels, c["A"].both) == (3 / 9, 7 / 9, 3 / 9)
    assert (c["S+"].count, c["S+"].imgt) == (3, 2 / 3)  # 0, 7, 8
    assert (c["M+"].count, c["M+"].labels) == (2, 1 / 2)  # 2, 4


def test_real_convention_leaves_out_empty_sets():
    table = score_predictions(PREDICTIONS, HAND, EquivalenceSet.load(), convention="real")
    c = table.categories
    # images 3 and 6 leave A: ImGT right on 0, 7, 8 of 7; ReGT wrong on 4 only
    assert (c["A"].count, c["A"].imgt, c["A"].labels) == (7, 3 / 7, 6 / 7)
    assert (c["N"].count, c["N"].imgt, c["N"].labels) == (2, None, None)
    # classes 620:1 5:½ 10:0 836:0 40:0 744:1
    assert table.per_class_mean_imgt == 2.5 / 6
    assert table.images_scored == 7


def test_out_of_prompt_rate_per_category():
    flags = {image_id: False for image_id in PREDICTIONS}
    flags[image_id_for_position(0)] = flags[image_id_for_position(4)] = flags[image_id_for_position(5)] = True
    table = score_predictions(PREDICTIONS, HAND, EquivalenceSet.load(), out_of_prompt=flags)
    c = table.categories
    assert (c["A"].oop, c["S+"].oop, c["S-"].oop, c["M-"].oop, c["M"].oop, c["N"].oop) == (3 / 9, 2 / 4, 0, 1, 1 / 2, 0)
    del flags[image_id_for_position(8)]
    with pytest.raises(InputError, match="ILSVRC2012_val_00000009: out-of-prompt flags"):
        score_predictions(PREDICTIONS, HAND, out_of_prompt=flags)


def test_missing_and_extra_predictions_are_counted_not_scored():
    predictions = dict(PREDICTIONS)
    del predictions[image_id_for_position(0)]
    predictions[image_id_for_position(100)] = 3
    table = score_predictions(predictions, HAND, EquivalenceSet.load())
    assert (table.images_scored, table.missing, table.outside_ground_truth) == (8, 1, 1)


def test_bad_prediction_values():
    with pytest.raises(InputError, match=r"ILSVRC2012_val_00000001: predicted class index outside 0\.\.999"):
        score_predictions({image_id_for_position(0): 1000}, HAND)
    with pytest.raises(InputError, match="convention"):
        score_predictions(PREDICTIONS, HAND, convention="imagenet")


def test_mc_interval_matches_a_hand_computation():
    mean, half = mean_interval([0.5, 0.6, 0.7])
    # s = 0.1 (ddof 1), t(0.975, 2) = 4.302652729911275 (table value), half = t·s/√3
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(4.302652729911275 * 0.1 / 3**0.5, rel=1e-9)
    with pytest.raises(InputError, match="at least two repeats"):
        mean_interval([0.5])


def test_real_convention_equals_timm_real_labels_exactly():
    """Independent implementation: timm's RealLabelsImagenet on the same 50,000 random predictions."""
    import torch
    from timm.data import RealLabelsImagenet

    rng = np.random.default_rng(0)
    predicted = rng.integers(0, 1000, size=50_000)
    truth = load_ground_truth("real")
    # make a good share right, so the comparison is not of two near-zero numbers
    for position in range(0, 50_000, 2):
        labels = truth[image_id_for_position(position)].labels
        if labels:
            predicted[position] = min(labels)
    filenames = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(50_000)]
    timm_real = RealLabelsImagenet(filenames, topk=(1,))
    for start in range(0, 50_000, 5_000):
        logits = torch.zeros(5_000, 1000)
        logits[torch.arange(5_000), torch.from_numpy(predicted[start : start + 5_000])] = 1.0
        timm_real.add_result(logits)
    ours = score_predictions(
        {image_id_for_position(i): int(p) for i, p in enumerate(predicted)},
        truth,
        EquivalenceSet.empty(),
        convention="real",
    )
    assert ours.categories["A"].count == len(timm_real.is_correct[1]) == 50_000 - 3_163
    assert ours.categories["A"].labels * 100 == timm_real.get_accuracy(k=1)
    assert 45 < timm_real.get_accuracy(k=1) < 60


def test_score_command_on_the_1300_images(shared_data, tmp_path):
    """Predict the original label everywhere: ImGT is 100%; ReGT is right on A (one label = original),
    wrong on B, right on M when the original label is among them, right on Z (counted, regt convention)."""
    import csv

    with open(shared_data / "imagenet_val_1300" / "labels.csv", newline="") as handle:
        labels = {row["image_id"]: int(row["imgt_label"]) for row in csv.DictReader(handle)}
    with open(shared_data / "flaws_of_imagenet" / "real.csv", newline="") as handle:
        flaws = {r["id"].removesuffix(".JPEG"): r for r in csv.DictReader(handle)}
    expected_right = 0
    for image_id in labels:
        row = flaws[image_id]
        proposed = {int(x) for x in row["proposed_labels"].split(",") if x.strip()}
        expected_right += row["category"] in ("A", "Z") or (
            row["category"] == "M" and int(row["original_label"]) in proposed
        )
    predictions = tmp_path / "predictions.jsonl"
    with open(predictions, "w") as handle:
        for image_id, label in labels.items():
            handle.write(json.dumps({"image_id": image_id + ".JPEG", "prediction": label}) + "\n")
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmms_eval_imagenet_regt",
            "score",
            str(predictions),
            "--gt",
            str(shared_data / "real" / "real.json"),
            "--equivalences",
            "none",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = json.loads(output)
    assert table["categories"]["A"]["count"] == 1300
    assert table["categories"]["A"]["imgt"] == 1.0
    assert table["categories"]["A"]["labels"] == expected_right / 1300
    all_right, none_right = (
        list(stats.binomtest(k, 68).proportion_ci(0.95, method="wilson")) for k in (68, 0)
    )  # scipy's Wilson interval, independent of the plugin's
    s_minus = table["categories"]["S-"]
    intervals = s_minus.pop("intervals")
    assert intervals.keys() == {"imgt", "labels", "both"}
    assert [*intervals["imgt"], *intervals["labels"], *intervals["both"]] == pytest.approx(
        [*all_right, *none_right, *none_right], abs=1e-12
    )
    assert s_minus == {"count": 68, "imgt": 1.0, "labels": 0.0, "both": 0.0, "oop": None, "outcomes": {}}
    assert table["label_set"] == "real"
    assert table["missing"] == 50_000 - 1300


def test_score_command_by_name_counts_unmatched_names(tmp_path):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(
        '{"image_id": "ILSVRC2012_val_00000001", "prediction_name": "Sea Snake "}\n'
        '{"image_id": "ILSVRC2012_val_00000002", "prediction_name": "a dragon"}\n'
        '{"image_id": "ILSVRC2012_val_00000003", "prediction": null}\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "lmms_eval_imagenet_regt", "score", str(predictions), "--gt", "imgt"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # image 1 is a sea snake (65); Wilson for 1 of 3 by hand, z = 1.96: (2.92 ± 2.50) / 6.84 = [6.1%, 79.2%]
    assert "| A | 3 | 33.33 [6.1, 79.2] | 33.33 [6.1, 79.2] | 33.33 [6.1, 79.2] |" in result
    assert "prediction names that matched no class: 1" in result
    assert "unanswered (no class parsed or mapped): 2" in result
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image_id": "ILSVRC2012_val_00000001", "prediction": 1000}\n')
    failed = subprocess.run(
        [sys.executable, "-m", "lmms_eval_imagenet_regt", "score", str(bad), "--gt", "imgt"],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2
    assert "bad.jsonl:1: 'prediction': class index outside 0..999 (got 1000)" in failed.stderr


def test_random_predictions_never_beat_the_label_sets():
    truth = load_ground_truth("real")
    rng = random.Random(1)
    predictions = {r.image_id: rng.randrange(1000) for r in truth}
    table = score_predictions(predictions, truth, EquivalenceSet.load())
    # chance level: ReGT is at least the N share (counted right), ImGT about 1/1000
    assert table.categories["A"].labels >= 3_163 / 50_000
    assert table.categories["A"].imgt < 0.003
