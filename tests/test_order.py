"""Image order, one-image-per-class subsets, CW class orders: seeded, recorded, and run through lmms-eval."""

from __future__ import annotations

import json
import os
import random

import pytest
import yaml
from scipy import stats

from lmms_eval_imagenet_regt import ClassVocabulary, InputError, load_ground_truth
from lmms_eval_imagenet_regt.lmms.plugin import tasks_dir
from lmms_eval_imagenet_regt.protocol.settings import ProtocolConfig
from tests.conftest import write_answers
from tests.lmms_run import OFFLINE, regt_cli, run_lmms_eval

#: The scripted CW answers (tests/test_e2e_scripted.py) on the 8 images: ImGT 2 of 8 right, ReaL 3 of 8.
CW_RIGHT = {"imgt_A": 2 / 8, "real_A": 3 / 8}


def variant(folder, task, name, **settings):
    """A task copy with other settings, written by hand as a user would."""
    metadata = yaml.safe_load((tasks_dir() / f"{task}.yaml").read_text()).get("metadata") or {}
    config = {"include": str(tasks_dir() / f"{task}.yaml"), "task": name, "metadata": {**metadata, **settings}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return name


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("image_order", "random", "must be id, by_class or shuffled:SEED"),
        ("subset", "one_per_class", "must be all or one_per_class:SEED"),
        ("class_order", "shuffled:x", "must be fixed or shuffled:SEED"),
    ],
)
def test_order_settings_are_checked(setting, value, problem):
    with pytest.raises(InputError, match=problem):
        ProtocolConfig(protocol="cw", **{setting: value})
    with pytest.raises(InputError, match="orders the class list of CW and CW\\+ only"):
        ProtocolConfig(protocol="mc", class_order="shuffled:1")


@pytest.mark.slow
def test_shuffled_order_scores_like_id_order_and_the_recorded_order_reproduces(
    real_dataset, scripted_answers, tmp_path
):
    tasks = tmp_path / "tasks"
    names = [
        variant(tasks, "imagenet_real_cw", "cw_by_id", image_order="id"),
        variant(tasks, "imagenet_real_cw", "cw_shuffled", image_order="shuffled:7"),
        variant(tasks, "imagenet_real_cw", "cw_by_class", image_order="by_class"),
    ]
    runs = run_lmms_eval(
        ["--include_path", str(tasks), "--tasks", ",".join(names), "--batch_size", "3"]
        + ["--model", "imagenet_regt_replay", "--model_args", f"answers={scripted_answers}"],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    for name in names:  # the replay model does not care about order: every metric is the same
        assert {k: runs[name]["report"]["metrics"][k] for k in CW_RIGHT} == CW_RIGHT
        assert runs[name]["report"]["metrics"] == runs["cw_by_id"]["report"]["metrics"]
        assert runs[name]["report"]["batch_size"] == 3
    ids = sorted(runs["cw_by_id"]["records"])
    shuffled = ids.copy()
    random.Random(7).shuffle(shuffled)
    truth = load_ground_truth("real")

    def served(name):  # the documents in the order lmms-eval numbered them
        return [s["target"] for s in sorted(runs[name]["samples"], key=lambda s: s["doc_id"])]

    assert served("cw_by_id") == ids and served("cw_shuffled") == shuffled != ids
    assert served("cw_by_class") == sorted(ids, key=lambda i: (truth[i].imgt, i))
    assert runs["cw_shuffled"]["config"]["metadata"]["imagenet_regt"]["settings"]["image_order"] == "shuffled:7"


@pytest.mark.slow
def test_one_image_per_class_of_the_shared_images(shared_data, tmp_path):
    images = shared_data / "imagenet_val_1300" / "images"
    truth, names = load_ground_truth("real"), ClassVocabulary.load().names
    ids = sorted(path.name.split(".")[0] for path in images.iterdir())
    answers = write_answers(tmp_path / "answers.jsonl", {i: names[truth[i].imgt] for i in ids})
    tasks = tmp_path / "tasks"
    name = variant(tasks, "imagenet_real_cw", "cw_one_per_class", subset="one_per_class:0")
    run = run_lmms_eval(
        ["--include_path", str(tasks), "--tasks", name, "--model", "imagenet_regt_replay"]
        + ["--model_args", f"answers={answers}"],
        tmp_path / "out",
        {"IMAGENET_REGT_IMAGES": str(images)},
    )[name]
    chosen = [truth[i].imgt for i in run["records"]]
    classes = {truth[i].imgt for i in ids}
    assert len(chosen) == len(set(chosen)) == len(classes) and set(chosen) == classes
    assert run["report"]["images"]["scored"] == len(classes) and run["report"]["metrics"]["imgt_A"] == 1.0


@pytest.mark.slow
def test_cw_repeats_shuffle_the_class_list_and_sensitivity_prints_intervals(real_dataset, scripted_answers, tmp_path):
    env = {**os.environ, **OFFLINE, "IMAGENET_REAL_DATA": str(real_dataset)}
    model = ["--model", "imagenet_regt_replay", "--model_args", f"answers={scripted_answers}"]
    out = tmp_path / "repeats"
    printed = regt_cli("repeats", "imagenet_real_cw", "--repeats", 3, "--out", out, "--", *model, env=env).stdout
    prompts = []
    for seed in range(3):
        [samples] = (out / "results").rglob(f"*_samples_imagenet_real_cw_seed{seed}.jsonl")
        prompt = json.loads(samples.read_text().splitlines()[0])["input"]
        listed = prompt.split("one per line.\n", 1)[1].split("\n")[:1000]
        assert sorted(listed) == sorted(ClassVocabulary.load().names)
        prompts.append(listed)
    assert len({tuple(p) for p in prompts}) == 3  # three class orders
    summary = json.loads((out / "repeats.json").read_text())["metrics"]
    # the replay answers ignore the prompt: the same 2 of 8 every repeat, an interval of width 0
    assert summary["imgt_A"] == {"mean": 0.25, "half_width": 0.0, "values": [0.25, 0.25, 0.25]}
    assert "| imgt_A | 25.00 | 0.00 | 3 |" in printed

    out = tmp_path / "sensitivity"
    args = ["sensitivity", "imagenet_real_cw", "--orders", 2, "--batch-sizes", 1, 4, "--out", out]
    printed = regt_cli(*args, "--", *model, env=env).stdout
    ci = {k: stats.binomtest(round(8 * v), 8).proportion_ci(0.95, method="wilson") for k, v in CW_RIGHT.items()}
    cells = " | ".join(f"{100 * v:.2f} [{100 * ci[k].low:.1f}, {100 * ci[k].high:.1f}]" for k, v in CW_RIGHT.items())
    for order in ("id", "shuffled:1"):
        for batch in (1, 4):
            assert f"| {order} | {batch} | {cells} |" in printed
    assert "| spread (max − min) | | 0.00 | 0.00 |" in printed
