"""Real model classes through the real lmms-eval CLI: a tiny random Qwen3-VL, and two processes."""

import pytest

from tests.lmms_run import TWO_CPU_PROCESSES, headline, metric, run_lmms_eval

pytestmark = pytest.mark.slow

TASKS = {
    "imagenet_real_ow": "ow",
    "imagenet_real_mc_imgt_random": "mc",
    "imagenet_real_cw": "cw",
    "imagenet_real_cwplus": "cwplus",
}
HEADLINE = {"imgt_A", "real_A", "im_and_re_A", "unanswered", "truncated", "failed", "images"}


@pytest.fixture(scope="module")
def tiny_qwen3_vl(tmp_path_factory):
    from tests.tiny_models import build_tiny_qwen3_vl

    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny-qwen3-vl"))


def test_tiny_qwen3_vl_runs_every_protocol(tiny_qwen3_vl, real_dataset, tmp_path):
    model_args = f"pretrained={tiny_qwen3_vl},device=cpu,device_map=cpu,max_pixels=50176,min_pixels=3136"
    runs = run_lmms_eval(
        ["--model", "qwen3_vl", "--model_args", model_args, "--tasks", ",".join(TASKS)],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    for task, protocol in TASKS.items():
        run = runs[task]
        names = {key.split(",")[0] for key in run["results"] if "," in key and "_stderr" not in key}
        assert names == HEADLINE | ({"oop_A"} if protocol != "ow" else set()), task
        assert metric(run, "count_A") == 8 == headline(run, "images")
        for name in ("imgt_A", "real_A", "unanswered"):
            assert 0.0 <= metric(run, name) <= 1.0, (task, name)
        assert sorted(run["records"])[:2] == ["ILSVRC2012_val_00000347", "ILSVRC2012_val_00000355"]
        assert all(isinstance(r["answer"], str) and r["labels"] for r in run["records"].values())
        assert len(run["report"]["prompt_hash"]) == 16 and len(run["report"]["labels"]["sha256"]) == 64
        assert run["report"]["model_info"] == {}  # lmms-eval's own model classes report nothing extra
    # noise answers: CW+ maps every non-empty out-of-prompt answer, so it is never below CW
    cwplus = runs["imagenet_real_cwplus"]
    assert metric(cwplus, "real_A") >= metric(cwplus, "cw_real_A")


def test_two_processes_give_the_same_metrics_and_records(real_dataset, tmp_path, scripted_answers):
    """7 images over 2 ranks (lmms-eval pads the short shard): the same records and every same number."""
    args = [
        "--model",
        "imagenet_regt_replay",
        "--model_args",
        f"answers={scripted_answers}",
        "--tasks",
        "imagenet_real_cwplus,imagenet_real_mc_imgt_random",
        "--limit",
        "7",
    ]
    env = {"IMAGENET_REAL_DATA": str(real_dataset)}
    single = run_lmms_eval(args, tmp_path / "one", env)
    double = run_lmms_eval(args, tmp_path / "two", {**env, "CUDA_VISIBLE_DEVICES": ""}, launcher=TWO_CPU_PROCESSES)
    for task in ("imagenet_real_cwplus", "imagenet_real_mc_imgt_random"):
        one, two = single[task], double[task]
        assert one["report"]["metrics"] == two["report"]["metrics"], task
        assert (one["report"]["world_size"], two["report"]["world_size"]) == (1, 2)
        assert len(one["records"]) == 7 and one["records"] == two["records"]
        assert one["report"]["images"]["limit"] == two["report"]["images"]["limit"] == 7
