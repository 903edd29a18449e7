"""Hard MC distractors from a real classifier: `imagenet-regt confusions` over the EfficientNet-Lite0 run on
the 1,300 shared images, then the confusion-based option sets read from that file."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lmms_eval_imagenet_regt import ClassVocabulary, load_ground_truth
from lmms_eval_imagenet_regt.labels.vocabulary import wordnet_ids
from tests.conftest import equivalent_classes, prompt_options, write_answers
from tests.lmms_run import regt_cli, run_lmms_eval

pytestmark = pytest.mark.slow

#: The 8 images of the `real_dataset` fixture: ImGT, then the three distractors the EfficientNet-Lite0 top-5
#: confusions give, read off the file by hand (ranked by count, ties by class index; never a ReaL label).
HAND_CHECKED = {
    "ILSVRC2012_val_00000347": ("kayak", {"paddle", "motorboat", "lakeshore"}),
    "ILSVRC2012_val_00000355": ("Chow Chow", {"Keeshond", "Tibetan Mastiff", "Pomeranian"}),
    "ILSVRC2012_val_00000361": ("tiger beetle", {"ground beetle", "longhorn beetle", "leaf beetle"}),
    "ILSVRC2012_val_00000363": ("bittern bird", {"limpkin", "house finch", "worm snake"}),
    "ILSVRC2012_val_00000556": ("lifeboat", {"dock", "school bus", "motorboat"}),
    "ILSVRC2012_val_00000560": ("railroad car", {"electric locomotive", "high-speed train", "freight car"}),
    # its ReaL labels (grocery store, refrigerator, vending machine) are admissible, so never distractors
    "ILSVRC2012_val_00000580": ("automated teller machine", {"payphone", "bookstore", "candy store"}),
    "ILSVRC2012_val_00000657": ("giant panda", {"red panda", "badger", "Alaskan Malamute"}),
}


def confusions(*args):
    return regt_cli("confusions", *args).stdout


def independent_counts(records: dict, top5: dict | None = None) -> Counter:
    same = equivalent_classes()
    counts = Counter()
    for image_id, record in records.items():
        guesses = top5[image_id] if top5 else record["classes"]
        for guess in dict.fromkeys(guesses):
            if guess not in same[record["imgt"]]:
                counts[record["imgt"], guess] += 1
    return counts


def as_file_rows(counts: Counter) -> list[list]:
    wnids = wordnet_ids()
    return sorted(([wnids[a], wnids[b], n] for (a, b), n in counts.items()), key=lambda r: (-r[2], r[0], r[1]))


def test_confusions_of_a_real_classifier_become_the_mc_distractors(efficientnet_lite0_run, real_dataset, tmp_path):
    records = efficientnet_lite0_run["records"]
    samples = efficientnet_lite0_run["samples_path"]
    # top-1: one confusion per image the classifier got wrong (1,300 − the 1,084 right under ImGT)
    printed = confusions(samples, "--out", tmp_path / "top1.json")
    assert printed.startswith(f"wrote {tmp_path / 'top1.json'}: 216 confusions (top-1) in ")
    expected = as_file_rows(independent_counts(records))
    assert sum(row[2] for row in expected) == 216
    assert sorted(json.loads((tmp_path / "top1.json").read_text()), key=lambda r: (-r[2], r[0], r[1])) == expected

    # top-5: every wrong class among the five
    top5 = {}
    for line in efficientnet_lite0_run["top5_path"].read_text().splitlines():
        row = json.loads(line)
        top5[row["image_id"]] = row["top5"]
    assert set(top5) == set(records)
    confusions(samples, "--top5", efficientnet_lite0_run["top5_path"], "--out", tmp_path / "top5.json")
    written = json.loads((tmp_path / "top5.json").read_text())
    # a top-5 file missing one of the run's images is refused, never mixed with top-1 answers
    partial = tmp_path / "partial.jsonl"
    partial.write_text(
        "".join(line + "\n" for line in efficientnet_lite0_run["top5_path"].read_text().splitlines()[1:])
    )
    refused = regt_cli("confusions", samples, "--top5", partial, "--out", tmp_path / "x.json", check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and not (tmp_path / "x.json").exists()
    assert "holds no top-5 classes for an image of the runs" in refused.stderr
    assert sorted(written, key=lambda r: (-r[2], r[0], r[1])) == as_file_rows(independent_counts(records, top5))

    # the confusion-based option sets now draw those classes: replay answers "A" for each of the 8 images
    ids = sorted(HAND_CHECKED)
    answers = write_answers(tmp_path / "a.jsonl", dict.fromkeys(ids, "A"))
    env = {"IMAGENET_REAL_DATA": str(real_dataset), "IMAGENET_REGT_CONFUSIONS": str(tmp_path / "top5.json")}
    task = "imagenet_real_mc_imgt_conf"
    run = run_lmms_eval(
        ["--model", "imagenet_regt_replay", "--model_args", f"answers={answers}", "--tasks", task],
        tmp_path / "mc",
        env,
    )[task]
    shown = {sample["target"]: set(prompt_options(sample).values()) for sample in run["samples"]}
    assert shown == {image_id: {imgt} | distractors for image_id, (imgt, distractors) in HAND_CHECKED.items()}
    real, names = load_ground_truth("real"), ClassVocabulary.load().names
    assert all(names[real[i].imgt] == imgt for i, (imgt, _) in HAND_CHECKED.items())
    assert run["config"]["metadata"]["imagenet_regt"]["confusions"]["file"] == "top5.json"
