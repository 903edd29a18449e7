"""End to end through the real lmms-eval CLI with scripted answers; metrics checked against hand counts.

The 8 images (first 8 of the shared set), their original label and ReaL labels:
0 kayak 472 [472]   1 Chow Chow 260 [260]   2 tiger beetle 300 [300]   3 bittern bird 133 [133]
4 lifeboat 625 [625]   5 railroad car 705 [705]   6 ATM 480 [480, 582, 760, 886] (M+)   7 giant panda 388 [388]

The free-text answers (conftest.FREE_ANSWERS), in image order, and what each is:
0 "Kayak": exact up to case (parsed, right everywhere)
1 "Answer: chow chow.": prefix and period — out of prompt by the paper's CW rule; CW+/OW map it (right)
2 "<think>…</think>tiger beetle": a complete reasoning block removed, then exact (parsed, right)
3 "": unanswered everywhere
4 "<think>Let me think. It could be a lifeboat": reasoning cut off — truncated, never mapped, wrong
5 "a railroad car": an article — out of prompt in CW; CW+/OW map it (right)
6 "vending machine": a ReaL label that is not the original (886 for ImGT 480): right for ReaL only
7 "[LMMS_EVAL_REQUEST_FAILED after 5 retries] …": a failed request — wrong, counted as failed
MC: "A" everywhere (right where the prompt shows the original label at A), then the right letter as "B",
"(b)", "B. name", "Answer: B", a wrong letter, "I cannot tell", the right option's name, and "".
"""

import json

import pytest

from tests.conftest import prompt_options
from tests.lmms_run import headline, metric, table_rows

pytestmark = pytest.mark.slow
IDS = (
    "ILSVRC2012_val_00000347",
    "ILSVRC2012_val_00000355",
    "ILSVRC2012_val_00000361",
    "ILSVRC2012_val_00000363",
    "ILSVRC2012_val_00000556",
    "ILSVRC2012_val_00000560",
    "ILSVRC2012_val_00000580",
    "ILSVRC2012_val_00000657",
)


def _outcomes(run):
    return [run["records"][i]["outcome"] for i in IDS]


def test_closed_world_counts_only_exact_names(scripted_runs):
    run = scripted_runs["imagenet_real_cw"]
    assert _outcomes(run) == ["parsed", "parsed", "parsed", "unanswered", "truncated", "parsed", "parsed", "failed"]
    # right: 0 and 2 on both, 6 on ReaL only; out of prompt: 1 and 5 (empty, truncated, failed are not answers)
    assert (metric(run, "imgt_A"), metric(run, "real_A"), metric(run, "im_and_re_A")) == (2 / 8, 3 / 8, 2 / 8)
    assert metric(run, "oop_A") == 2 / 8
    assert (metric(run, "unanswered"), metric(run, "truncated"), metric(run, "failed")) == (1 / 8, 1 / 8, 1 / 8)
    assert (metric(run, "count_S+"), metric(run, "count_M+"), metric(run, "count_N")) == (7, 1, 0)
    assert (metric(run, "real_S+"), metric(run, "real_M+"), metric(run, "imgt_M+")) == (2 / 7, 1.0, 0.0)
    assert run["report"]["outcomes"]["M+"] == {"parsed": 1}
    assert run["report"]["outcomes"]["S+"] == {"parsed": 4, "unanswered": 1, "truncated": 1, "failed": 1}


def test_closed_world_plus_maps_out_of_prompt_answers_and_reports_plain_cw_per_category(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    assert _outcomes(run) == ["parsed", "mapped", "parsed", "unanswered", "truncated", "mapped", "parsed", "failed"]
    assert [run["records"][i]["classes"] for i in IDS] == [[472], [260], [300], [], [], [705], [886], []]
    assert (metric(run, "imgt_A"), metric(run, "real_A"), metric(run, "oop_A")) == (4 / 8, 5 / 8, 2 / 8)
    # plain CW from the same answers, for every category (the two columns of the paper's Table 4)
    assert (metric(run, "cw_imgt_A"), metric(run, "cw_real_A"), metric(run, "cw_real_S+")) == (2 / 8, 3 / 8, 2 / 7)
    assert (metric(run, "cw_real_M+"), metric(run, "cw_imgt_M+")) == (1.0, 0.0)
    assert metric(run, "oop_N") is None and metric(run, "count_N") == 0
    assert 0 < run["records"][IDS[1]]["similarity"] <= 1 and "similarity" not in run["records"][IDS[0]]


def test_open_world_maps_answers_but_never_truncated_or_failed_ones(scripted_runs):
    run = scripted_runs["imagenet_real_ow"]
    assert _outcomes(run) == ["mapped", "mapped", "mapped", "unanswered", "truncated", "mapped", "mapped", "failed"]
    assert (metric(run, "imgt_A"), metric(run, "real_A")) == (4 / 8, 5 / 8)
    assert not any(key.startswith("oop_") for key in run["report"]["metrics"])
    assert "oop_A" not in {key.split(",")[0] for key in run["results"]}


def test_multiple_choice_answers_are_read_against_the_prompt_shown(scripted_runs):
    from lmms_eval_imagenet_regt import ClassVocabulary

    names = ClassVocabulary.load().names
    first = scripted_runs["mc_all_a"]
    right = [prompt_options(s).get("A") == names[first["records"][s["target"]]["imgt"]] for s in first["samples"]]
    assert metric(first, "imgt_A") == sum(right) / 8 and 0 < sum(right) < 8
    run = scripted_runs["imagenet_real_mc_imgt_random"]
    # right: 0-3 (letter forms) and 6 (option name); 4 a wrong letter; 5 names no option; 7 unanswered
    assert (metric(run, "imgt_A"), metric(run, "real_A"), metric(run, "oop_A")) == (5 / 8, 5 / 8, 1 / 8)
    assert metric(run, "unanswered") == 1 / 8
    for sample in run["samples"]:
        options, record = prompt_options(sample), run["records"][sample["target"]]
        assert list(options.values()) == [names[c] for c in record["options"]]
        assert names[record["imgt"]] in options.values()
        assert not set(record["options"]) - {record["imgt"]} & set(record["labels"])


def test_lmms_eval_prints_a_few_headline_rows_and_the_breakdown_once(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    rows = table_rows(run["stdout"], "imagenet_real_cwplus")
    names = [row.split("|")[4].strip() for row in rows]
    assert sorted(names) == sorted(
        ["failed", "im_and_re_A", "images", "imgt_A", "oop_A", "real_A", "truncated", "unanswered"]
    )
    assert len(rows) <= 10 and max(len(row) for row in rows) < 120
    # lmms-eval's averages of the per-image values equal the report (the plugin checks this on every run)
    assert headline(run, "real_A") == metric(run, "real_A") and headline(run, "images") == 8
    assert run["log"].count("imagenet_real_cwplus: 8 of the 50000 images of label set 'real'") == 1
    # one image: Wilson by hand (z = 1.96), 0 of 1 → [0, z²/(1+z²)] = [0.0, 79.3], 1 of 1 → [20.7, 100.0]
    none, one = "0.00 [0.0, 79.3]", "100.00 [20.7, 100.0]"
    assert f"| M+ | 1 | {none} | {one} | {none} | {none} | {none} | {one} |" in run["log"]
    assert "1 of 8 requests failed" in run["log"]


def test_each_sample_holds_one_compact_record(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    sample = next(s for s in run["samples"] if s["target"] == IDS[2])
    record = sample["images"]
    assert record == {
        "task": "imagenet_real_cwplus",
        "image_id": IDS[2],
        "imgt": 300,
        "labels": [300],
        "not_sure": False,
        "answer": "<think>It has six legs.</think>tiger beetle",
        "answer_chars": 43,
        "answer_sha256": __import__("hashlib").sha256(record["answer"].encode()).hexdigest()[:16],
        "outcome": "parsed",
        "cleaned": "tiger beetle",
        "classes": [300],
        "out_of_prompt": False,
    }
    assert sample["filtered_resps"] == [record["answer"]]  # settings never travel inside the answer text
    # per image: the record once, the headline 0/1 values, lmms-eval's own fields and its prompt (`input`)
    per_image = len(json.dumps({k: v for k, v in sample.items() if k != "input"}))
    assert per_image < 1000, per_image


def test_results_record_the_run_and_every_number_of_the_tables(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    report = run["report"]
    assert report["labels"]["set"] == "real" and report["labels"]["images"] == 50_000
    assert report["images"]["scored"] == 8 and report["coverage"] == 8 / 50_000 and report["images"]["limit"] is None
    assert report["settings"]["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert report["versions"]["lmms-eval"] == "0.7.3" and report["world_size"] == 1
    for category in ("A", "S", "S+", "S-", "M", "M+", "M-", "N"):
        for prefix in ("imgt", "real", "im_and_re", "count", "oop", "cw_imgt", "cw_real"):
            assert f"{prefix}_{category}" in report["metrics"], (prefix, category)
    recorded = run["config"]["metadata"]["imagenet_regt"]
    assert (
        recorded["labels"]["sha256"] == report["labels"]["sha256"] and recorded["prompt_hash"] == report["prompt_hash"]
    )
