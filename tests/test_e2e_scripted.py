"""End to end through the real lmms-eval CLI with scripted answers; metrics checked against hand counts.

The answers (fixture `scripted_runs` in conftest.py), in image order: "Kayak" (exact up to case),
"Answer: chow chow." (trailing period: out of prompt in CW, mapped in CW+/OW), "<think>…</think>tiger beetle"
(reasoning stripped, then exact), "" (unanswered everywhere), "zxqv wrrrt" (garbage: out of prompt, maps to
a wrong class), "a railroad car" (article: out of prompt in CW), "vending machine" (a ReaL label that is not
the original), "giant panda bear" (paraphrase). MC: the right letter as "B", "(b)", "B. name", "Answer: B",
then a wrong letter, "I cannot tell", the right option's name, and "".

The 8 images (first 8 of the shared set), their original label and ReaL labels:
0 kayak 472 [472]   1 Chow Chow 260 [260]   2 tiger beetle 300 [300]   3 bittern bird 133 [133]
4 lifeboat 625 [625]   5 railroad car 705 [705]   6 ATM 480 [480, 582, 760, 886] (M+)   7 giant panda 388 [388]
"""

import pytest

from tests.lmms_run import metric

pytestmark = pytest.mark.slow


def test_closed_world_counts_only_exact_names(scripted_runs):
    run = scripted_runs["imagenet_real_cw"]
    # right: 0 and 2 on both; 6 on ReGT only. Out of prompt: 1, 3, 4, 5, 7.
    assert metric(run, "imgt_A") == 2 / 8
    assert metric(run, "regt_A") == 3 / 8
    assert metric(run, "im_and_re_A") == 2 / 8
    assert metric(run, "oop_A") == 5 / 8
    assert metric(run, "unanswered") == 5 / 8
    assert (metric(run, "count_S+"), metric(run, "count_M+"), metric(run, "count_N")) == (7, 1, 0)
    assert (metric(run, "regt_S+"), metric(run, "regt_M+"), metric(run, "imgt_M+")) == (2 / 7, 1.0, 0.0)


def test_closed_world_plus_maps_out_of_prompt_answers_and_reports_plain_cw(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    # 1, 5, 7 mapped to their classes; 4 (garbage) maps to a wrong class; 3 (empty) stays unanswered
    assert metric(run, "imgt_A") == 5 / 8
    assert metric(run, "regt_A") == 6 / 8
    assert metric(run, "oop_A") == 5 / 8
    assert metric(run, "unanswered") == 1 / 8
    assert (metric(run, "cw_imgt_A"), metric(run, "cw_regt_A")) == (2 / 8, 3 / 8)
    assert metric(run, "world_size") == 1
    assert metric(run, "labels_hash") == read_labels_sha(run)
    assert "lmms-eval 0.7.3" in metric(run, "versions")
    settings = run["config"]["lmms_eval_specific_kwargs"]["default"]
    assert settings["encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and settings["names"] == "clean"


def read_labels_sha(run):
    from lmms_eval_imagenet_regt import GroundTruth, ImageLabels

    records = [s["regt_A"] for s in run["samples"]]
    return GroundTruth(
        "x", {r["image_id"]: ImageLabels(r["image_id"], r["imgt"], frozenset(r["labels"])) for r in records}
    ).sha256


def test_open_world_maps_every_answer(scripted_runs):
    run = scripted_runs["imagenet_real_ow"]
    # all but 3 (empty) and 4 (garbage) map right; 6 is right for ReGT only
    assert metric(run, "imgt_A") == 5 / 8
    assert metric(run, "regt_A") == 6 / 8
    assert metric(run, "unanswered") == 1 / 8
    assert not any(key.startswith("oop_") for key in run["results"])


def test_multiple_choice_parses_letters_and_names(scripted_runs):
    run = scripted_runs["imagenet_real_mc_imgt_random"]
    # right: 0-3 (letter forms) and 6 (option name); 4 wrong letter; 5 and 7 name no option (OOP)
    assert metric(run, "imgt_A") == 5 / 8
    assert metric(run, "regt_A") == 5 / 8
    assert metric(run, "oop_A") == 2 / 8
    records = sorted((s["imgt_A"] for s in run["samples"]), key=lambda r: r["image_id"])
    assert all(len(r["options"]) == 4 and r["imgt"] in r["options"] for r in records)
    assert not any(set(r["options"]) - {r["imgt"]} & set(r["labels"]) for r in records)


def test_samples_carry_everything_needed_to_rescore(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    records = {s["regt_A"]["image_id"]: s["regt_A"] for s in run["samples"]}
    assert len(records) == 8
    record = records["ILSVRC2012_val_00000361"]
    assert record["raw_answer"] == "<think>It has six legs.</think>tiger beetle"
    assert record["answer"] == "tiger beetle" and record["classes"] == [300]
    assert record["imgt"] == 300 and record["labels"] == [300] and record["out_of_prompt"] is False
    garbage = records["ILSVRC2012_val_00000556"]
    assert garbage["out_of_prompt"] and garbage["needs_mapping"] and garbage["classes"] == []
