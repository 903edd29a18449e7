"""After the run: re-scoring, MC repeats, submissions, the validator and the leaderboard."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from lmms_eval_imagenet_regt import EquivalenceSet, InputError
from lmms_eval_imagenet_regt.outputs.dataset import read_labels
from lmms_eval_imagenet_regt.outputs.leaderboard import reference_rows
from lmms_eval_imagenet_regt.outputs.submission import build_submissions, validate, validate_file
from lmms_eval_imagenet_regt.protocol.options import sample_options
from lmms_eval_imagenet_regt.records import METRICS
from tests.browser import ARTIFACTS, browser_context
from tests.lmms_run import OFFLINE, metric

pytestmark = pytest.mark.slow


def cli(*args, check=True, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lmms_eval_imagenet_regt", *map(str, args)],
        capture_output=True,
        text=True,
        check=check,
        env=env,
    )


@pytest.mark.parametrize(
    "task", ["imagenet_real_cw", "imagenet_real_cwplus", "imagenet_real_ow", "imagenet_real_mc_imgt_random"]
)
def test_rescore_reproduces_the_run_exactly(scripted_runs, task):
    run = scripted_runs[task]
    rescored = json.loads(cli("rescore", run["samples_path"], "--format", "json").stdout)[task]
    for name in METRICS[run["config"]["lmms_eval_specific_kwargs"]["default"]["protocol"]]:
        assert rescored[name] == metric(run, name), name


def test_rescore_under_another_ground_truth_gives_hand_values(scripted_runs, real_dataset, tmp_path):
    """New labels: Chow Chow has none (N) and the ATM only its original label, so "vending machine" is wrong.
    CW answers right: kayak, tiger beetle (both ImGT and ReGT); Chow Chow counts right for ReGT (N)."""
    labels = read_labels(real_dataset)
    ids = sorted(labels.images)
    custom = tmp_path / "labels.jsonl"
    rows = [{"image_id": i, "labels": [] if n == 1 else [labels[i].imgt]} for n, i in enumerate(ids)]
    custom.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = scripted_runs["imagenet_real_cw"]["samples_path"]
    regt = json.loads(cli("rescore", samples, "--gt", custom, "--format", "json").stdout)["imagenet_real_cw"]
    assert (regt["imgt_A"], regt["regt_A"], regt["im_and_re_A"]) == (2 / 8, 3 / 8, 2 / 8)
    assert (regt["count_S+"], regt["count_M+"], regt["count_N"]) == (7, 0, 1)
    assert regt["labels_hash"] != metric(scripted_runs["imagenet_real_cw"], "labels_hash")
    real = json.loads(cli("rescore", samples, "--gt", custom, "--convention", "real", "--format", "json").stdout)
    assert (real["imagenet_real_cw"]["regt_A"], real["imagenet_real_cw"]["imgt_A"]) == (
        2 / 7,
        2 / 7,
    )
    table = cli("rescore", samples, "--gt", custom).stdout
    assert "| imagenet_real_cw | 8 | 25.00 | 37.50 |" in table


def test_rescore_with_another_encoder_changes_only_mapped_answers(scripted_runs):
    samples = scripted_runs["imagenet_real_cwplus"]["samples_path"]
    other = json.loads(cli("rescore", samples, "--templates", "{}", "--format", "json").stdout)["imagenet_real_cwplus"]
    run = scripted_runs["imagenet_real_cwplus"]
    # plain CW never maps, so it cannot change; the mapped answers here are unambiguous paraphrases
    assert other["cw_regt_A"] == metric(run, "cw_regt_A") == 3 / 8
    assert other["regt_A"] == 6 / 8


def test_mc_repeats_interval_matches_a_hand_computation(real_dataset, tmp_path):
    """Answer "A" everywhere: right exactly when the sampled options put the original label first."""
    labels = read_labels(real_dataset)
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"image_id": i, "answer": "A"}) + "\n" for i in sorted(labels.images)))
    repeats = 3
    per_seed = []
    for seed in range(repeats):
        right = [
            sample_options(labels[i], "imgt_random", 4, seed, EquivalenceSet.load())[0] == labels[i].imgt
            for i in sorted(labels.images)
        ]
        per_seed.append(sum(right) / len(right))
    out = tmp_path / "repeats"
    env = {**__import__("os").environ, **OFFLINE, "IMAGENET_REAL_DATA": str(real_dataset)}
    printed = cli(
        "mc-repeats",
        "imagenet_real_mc_imgt_random",
        "--repeats",
        repeats,
        "--out",
        out,
        "--",
        "--model",
        "imagenet_regt_replay",
        "--model_args",
        f"answers={answers}",
        env=env,
    ).stdout
    summary = json.loads((out / "mc_repeats.json").read_text())["metrics"]["imgt_A"]
    assert summary["values"] == per_seed
    mean = sum(per_seed) / repeats
    half = stats.t.ppf(0.975, repeats - 1) * np.std(per_seed, ddof=1) / math.sqrt(repeats)
    assert summary["mean"] == pytest.approx(mean, abs=1e-12)
    assert summary["half_width"] == pytest.approx(half, abs=1e-12)
    assert f"| imgt_A | {100 * mean:.2f} | {100 * half:.2f} | 3 |" in printed


@pytest.fixture(scope="module")
def submissions(scripted_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("submissions")
    for task in ("imagenet_real_cwplus", "imagenet_real_mc_imgt_random"):
        results_dir = scripted_runs[task]["results_path"].parent
        cli("submit", results_dir, "--out", out, "--model-id", f"scripted/{task.split('_')[-1]}", "--revision", "r1")
    return out


def test_submit_writes_every_field_and_eval_results(submissions, scripted_runs):
    files = sorted(submissions.glob("*.json"))
    assert [f.name for f in files] == [
        "scripted_cwplus__imagenet_real_cw.json",
        "scripted_cwplus__imagenet_real_cwplus.json",
        "scripted_cwplus__imagenet_real_ow.json",
        "scripted_random__imagenet_real_mc_imgt_random.json",
    ]
    cwplus = json.loads((submissions / "scripted_cwplus__imagenet_real_cwplus.json").read_text())
    run = scripted_runs["imagenet_real_cwplus"]
    assert cwplus["model"]["id"] == "scripted/cwplus" and cwplus["model"]["revision"] == "r1"
    assert cwplus["protocol"] == "cwplus" and cwplus["n_images"] == 8 and cwplus["world_size"] == 1
    assert cwplus["settings"]["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert cwplus["labels"]["hash"] == metric(run, "labels_hash")
    assert cwplus["metrics"]["regt_A"] == 6 / 8 and cwplus["metrics"]["cw_regt_A"] == 3 / 8
    assert cwplus["decoding"]["max_new_tokens"] == 32 and cwplus["batch_size"] == 1
    eval_results = (submissions / ".eval_results" / "imagenet_real_cwplus.yaml").read_text()
    assert "task_id: imagenet_real_cwplus" in eval_results and "value: 75.0" in eval_results
    assert cli("validate", *files).stdout.count(": valid") == 4


def _valid(submissions):
    return json.loads((submissions / "scripted_cwplus__imagenet_real_cwplus.json").read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("labels"), "missing field 'labels'"),
        (lambda s: s.update(world_size="2"), "field 'world_size' must be an integer"),
        (lambda s: s["metrics"].update(regt_A=1.5), "metric regt_A = 1.5 is outside [0, 1]"),
        (lambda s: s["metrics"].update(oop_A=-0.1), "metric oop_A = -0.1 is outside [0, 1]"),
        (lambda s: s["metrics"].update({"count_S+": 6}), "count_S = 7 is not count_S+ + count_S-"),
        (lambda s: s.update(n_images=9), "n_images = 9 differs from count_A = 8"),
        (lambda s: s["metrics"].update({"regt_S": 0.99}), "regt_S is not the count-weighted mean of its parts"),
        (lambda s: s["metrics"].pop("regt_M-"), "metrics missing: regt_M-"),
        (lambda s: s.update(protocol="ow"), "does not match protocol 'ow'"),
        (lambda s: s.update(schema_version=2), "schema must be lmms-eval-imagenet-regt/submission version 1"),
        (lambda s: s["labels"].update(hash="abc"), "labels.hash must be a sha256 hex digest"),
        (lambda s: s.update(prompt_hash="xyz"), "prompt_hash must be 16 hex digits"),
    ],
)
def test_validator_rejects_each_malformed_case(submissions, change, message):
    submission = _valid(submissions)
    assert validate(submission) == []
    change(submission)
    assert any(message in problem for problem in validate(submission)), validate(submission)


def test_validator_checks_the_label_hash_and_names_the_file(submissions, tmp_path):
    path = submissions / "scripted_cwplus__imagenet_real_cwplus.json"
    with pytest.raises(InputError, match=r"cwplus\.json: invalid submission:\n  - labels\.hash .* does not match"):
        validate_file(path, expected_labels_hash="0" * 64)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    failed = cli("validate", broken, path, "--labels-hash", "0" * 64, check=False)
    assert failed.returncode == 1
    assert "broken.json: not valid JSON" in failed.stderr and "does not match the expected labels" in failed.stderr


def test_build_submissions_needs_our_tasks(tmp_path):
    results = tmp_path / "x_results.json"
    results.write_text(json.dumps({"results": {"mme": {}}, "configs": {}, "config": {"model": "m"}}))
    with pytest.raises(InputError, match="no imagenet_regt_\\* or imagenet_real_\\* task"):
        build_submissions(results)


@pytest.fixture(scope="module")
def board(submissions, tmp_path_factory):
    out = tmp_path_factory.mktemp("leaderboard")
    cli("leaderboard", *sorted(submissions.glob("*.json")), "--out", out)
    return out


def test_leaderboard_markdown_ranks_and_reference_rows(board):
    text = (board / "leaderboard.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == 4 + len(reference_rows()) == 17
    assert sum("†" in row for row in rows) == 13
    # EVA-02 has the best ReGT A of all rows: rank 1 in that column
    assert "| EVA-02 ViT-L-14-448 † | cw | 90.13 (1) | 90.04 (1) |" in text
    assert "| **scripted/cwplus** | imagenet_real_cwplus | 62.50 (" in text


def test_leaderboard_figures_decode_and_show_every_model(board):
    from PIL import Image

    for name in ("imgt_to_regt.png", "accuracy_by_category.png"):
        with Image.open(board / name) as image:
            image.load()
            assert image.width > 400 and image.height > 300
            models = json.loads(image.info["Description"])
        assert len(models) == 17 and sum(m.endswith("†") for m in models) == 13


def test_leaderboard_page_renders_and_sorts_in_chromium(board):
    with browser_context(viewport={"width": 1400, "height": 900}) as context:
        page = context.new_page()
        page.goto((board / "leaderboard.html").as_uri())
        assert page.locator("#leaderboard tbody tr").count() == 17
        assert page.locator("#leaderboard tbody tr.reference").count() == 13

        def column(index):
            return [
                float(v) if v else None
                for v in page.eval_on_selector_all(
                    "#leaderboard tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.value)"
                )
            ]

        page.click("#leaderboard th:nth-child(4)")  # ReGT A (columns: model, task, ImGT A, ReGT A, ...)
        values = column(3)
        assert values == sorted(values, reverse=True) and page.locator("th.sorted-desc").inner_text() == "ReGT A"
        page.click("#leaderboard th:nth-child(3)")  # ImGT A
        page.click("#leaderboard th:nth-child(3)")  # again: ascending
        values = column(2)
        assert values == sorted(values) and page.locator("th.sorted-asc").count() == 1
        first = page.locator("#leaderboard tbody tr").first.inner_text()
        assert "scripted" in first  # the scripted runs have the lowest ImGT accuracy
        shot = ARTIFACTS / "leaderboard.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
