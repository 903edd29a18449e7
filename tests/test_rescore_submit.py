"""After the run: re-scoring, predict-only runs, MC repeats, submissions, the validator and the leaderboard.

Hand values refer to the scripted answers of test_e2e_scripted.py (CW: ImGT 2/8, ReaL 3/8; CW+: 4/8, 5/8).
"""

import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats

from lmms_eval_imagenet_regt import InputError, load_ground_truth
from lmms_eval_imagenet_regt.outputs.dataset import read_labels
from lmms_eval_imagenet_regt.outputs.leaderboard import reference_rows
from lmms_eval_imagenet_regt.outputs.submission import build_submissions, validate, validate_file
from tests.browser import ARTIFACTS, browser_context
from tests.conftest import equivalent_classes, prompt_options, write_answers
from tests.lmms_run import OFFLINE, regt_cli, run_lmms_eval

pytestmark = pytest.mark.slow


def _wilson(k: int, n: int) -> str:
    """scipy's 95% Wilson interval of k of n, in percent as the tables print it."""
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return f"[{100 * ci.low:.1f}, {100 * ci.high:.1f}]"


cli = regt_cli


def rescore(*args):
    return json.loads(cli("rescore", *args, "--format", "json").stdout)


@pytest.mark.parametrize(
    ("task", "hand"),
    [
        ("imagenet_real_cw", {"imgt_A": 2 / 8, "real_A": 3 / 8, "oop_A": 2 / 8, "failed": 1 / 8}),
        ("imagenet_real_cwplus", {"imgt_A": 4 / 8, "real_A": 5 / 8, "cw_real_A": 3 / 8, "truncated": 1 / 8}),
        ("imagenet_real_ow", {"imgt_A": 4 / 8, "real_A": 5 / 8, "unanswered": 1 / 8}),
        ("imagenet_real_mc_imgt_random", {"imgt_A": 5 / 8, "real_A": 5 / 8, "oop_A": 1 / 8}),
    ],
)
def test_rescore_gives_the_hand_values_and_the_runs_own_numbers(scripted_runs, task, hand):
    run = scripted_runs[task]
    rescored = rescore(run["samples_path"])[task]
    assert {name: rescored["metrics"][name] for name in hand} == hand
    assert rescored["metrics"] == run["report"]["metrics"]
    assert rescored["images"] == {key: run["report"]["images"][key] for key in ("scored", "sha256", "labels_sha256")}


def test_rescore_under_another_ground_truth_gives_hand_values(scripted_runs, real_dataset, tmp_path):
    """New labels: Chow Chow has none (N) and the ATM only its original label, so "vending machine" is wrong.
    CW answers right: kayak, tiger beetle (both ImGT and the labels); Chow Chow counts right (N)."""
    labels = read_labels(real_dataset)
    ids = sorted(labels.images)
    custom = tmp_path / "labels.jsonl"
    rows = [{"image_id": i, "labels": [] if n == 1 else [labels[i].imgt]} for n, i in enumerate(ids)]
    custom.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = scripted_runs["imagenet_real_cw"]["samples_path"]
    regt = rescore(samples, "--gt", custom)["imagenet_real_cw"]
    assert regt["label_set"] == "regt"
    metrics = regt["metrics"]
    assert (metrics["imgt_A"], metrics["regt_A"], metrics["im_and_re_A"]) == (2 / 8, 3 / 8, 2 / 8)
    assert (metrics["count_S+"], metrics["count_M+"], metrics["count_N"]) == (7, 0, 1)
    real = rescore(samples, "--gt", custom, "--convention", "real")["imagenet_real_cw"]["metrics"]
    assert (real["regt_A"], real["imgt_A"]) == (2 / 7, 2 / 7)
    quarter, three_eighths = _wilson(2, 8), _wilson(3, 8)
    row = f"| A | 8 | 25.00 {quarter} | 37.50 {three_eighths} | 25.00 {quarter} | 25.00 {quarter} |"
    assert row in cli("rescore", samples, "--gt", custom).stdout


def test_rescore_with_another_encoder_changes_only_mapped_answers(scripted_runs):
    run = scripted_runs["imagenet_real_cwplus"]
    other = rescore(run["samples_path"], "--templates", "{}")["imagenet_real_cwplus"]["metrics"]
    # plain CW never maps, so it cannot change; the two mapped answers are unambiguous paraphrases
    assert other["cw_real_A"] == 3 / 8 and other["real_A"] == 5 / 8


def test_a_samples_file_cut_short_or_from_another_run_is_refused(scripted_runs, tmp_path):
    run = scripted_runs["imagenet_real_cw"]
    folder = tmp_path / "run"
    folder.mkdir()
    results = shutil.copy(run["results_path"], folder)
    samples = folder / run["samples_path"].name
    lines = run["samples_path"].read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:2]))  # a run killed while lmms-eval wrote line 3
    failed = cli("rescore", samples, check=False)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1
    assert "does not match its results file" in failed.stderr and "2 records, the results say 8 images" in failed.stderr
    other = (
        scripted_runs["imagenet_real_cwplus"]["samples_path"]
        .read_text()
        .replace("imagenet_real_cwplus", "imagenet_real_cw")
    )
    samples.write_text(other.replace('"labels": [300]', '"labels": [301]'))
    assert "labels differ" in cli("rescore", samples, check=False).stderr
    failed = cli("submit", results, "--out", tmp_path / "subs", "--allow-failed", check=False)
    assert failed.returncode == 2 and "does not match its results file" in failed.stderr
    assert not (tmp_path / "subs").exists()


def test_predict_only_samples_are_rescored_by_the_recorded_settings(real_dataset, scripted_answers, tmp_path):
    runs = run_lmms_eval(
        ["--model", "imagenet_regt_replay", "--model_args", f"answers={scripted_answers}"]
        + ["--tasks", "imagenet_real_cwplus", "--predict_only"],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    run = runs["imagenet_real_cwplus"]
    assert run["report"] is None and "images" not in run["samples"][0]
    metrics = rescore(run["samples_path"])["imagenet_real_cwplus"]["metrics"]
    assert (metrics["imgt_A"], metrics["real_A"], metrics["cw_real_A"], metrics["failed"]) == (
        4 / 8,
        5 / 8,
        3 / 8,
        1 / 8,
    )


def test_mc_repeats_interval_matches_a_hand_computation(real_dataset, tmp_path):
    """Answer "A" everywhere: right exactly where the prompt of that repeat showed the original label at A."""
    from lmms_eval_imagenet_regt import ClassVocabulary

    names = ClassVocabulary.load().names
    labels = read_labels(real_dataset)
    answers = write_answers(tmp_path / "answers.jsonl", dict.fromkeys(sorted(labels.images), "A"))
    repeats, out = 3, tmp_path / "repeats"
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
    per_seed = []
    for seed in range(repeats):
        [samples] = (out / "results").rglob(f"*_samples_imagenet_real_mc_imgt_random_seed{seed}.jsonl")
        shown = [json.loads(line) for line in samples.read_text().splitlines()]
        right = [prompt_options(s)["A"] == names[labels[s["target"]].imgt] for s in shown]
        per_seed.append(sum(right) / len(right))
    assert len(set(per_seed)) > 1  # the seeds draw different options
    summary = json.loads((out / "repeats.json").read_text())["metrics"]["imgt_A"]
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
        results = scripted_runs[task]["results_path"]
        model = f"scripted/{task.split('_')[-1]}"
        cli("submit", results, "--out", out, "--model-id", model, "--revision", "r1", "--allow-failed")
    return out


def test_submit_refuses_failed_requests_unless_allowed(scripted_runs, tmp_path):
    failed = cli("submit", scripted_runs["imagenet_real_cw"]["results_path"], "--out", tmp_path / "s", check=False)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1
    assert "1 of 8 requests failed" in failed.stderr and "--allow-failed" in failed.stderr
    assert not (tmp_path / "s").exists()


def test_submit_refuses_a_folder_of_several_runs(scripted_runs, tmp_path):
    for task in ("imagenet_real_cw", "imagenet_real_mc_imgt_random"):
        folder = tmp_path / "results" / task
        folder.mkdir(parents=True)
        shutil.copy(scripted_runs[task]["results_path"], folder)
    failed = cli("submit", tmp_path / "results", "--out", tmp_path / "s", "--allow-failed", check=False)
    assert failed.returncode == 2 and "holds 2 runs' results; name the results file" in failed.stderr


def test_submit_writes_every_field_and_no_eval_results_for_a_partial_run(submissions, scripted_runs, tmp_path):
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
    assert cwplus["protocol"] == "cwplus" and cwplus["images"]["scored"] == 8 and cwplus["world_size"] == 1
    assert cwplus["labels"] == {"set": "real", "sha256": run["report"]["labels"]["sha256"], "images": 50_000}
    assert cwplus["coverage"] == 8 / 50_000
    assert cwplus["outcomes"] == {"parsed": 3, "mapped": 2, "unanswered": 1, "truncated": 1, "failed": 1}
    assert cwplus["metrics"]["real_A"] == 5 / 8 and cwplus["metrics"]["cw_real_A"] == 3 / 8
    wilson = stats.binomtest(5, 8).proportion_ci(0.95, method="wilson")
    assert cwplus["intervals"]["real_A"] == pytest.approx([wilson.low, wilson.high], abs=1e-12)
    assert cwplus["interval_method"]["proportions"] == "wilson" and cwplus["interval_method"]["seed"] == 0
    assert cwplus["decoding"]["max_new_tokens"] == 32 and cwplus["batch_size"] == 1
    # the answers file's local path is replaced by its name and a hash of its content
    answers = cwplus["model"]["model_args"]
    assert answers.startswith("answers=free.jsonl#sha256:") and "/" not in answers
    # 8 of ReaL's 50,000 images are no score on a ReaL benchmark: no .eval_results, and the reason printed
    assert not (submissions / ".eval_results").exists()
    printed = cli("submit", run["results_path"], "--out", tmp_path, "--allow-failed").stdout
    assert "no .eval_results: imagenet_real_cwplus scored 8 of the label set's 50,000 images" in printed
    checked = cli("validate", *files).stdout
    assert checked.count(": valid") == 4 and checked.count("warning: covers 0.0% of the label set") == 4


def test_eval_results_name_the_labels_benchmark_and_follow_the_hub_schema(submissions):
    """A complete run (as if its label set were these 8 images): the entry names the labels' Hub dataset,
    never ILSVRC/imagenet-1k, with the keys of the Hub's `.eval_results` schema."""
    import yaml

    from lmms_eval_imagenet_regt.outputs.submission import eval_results_benchmark, eval_results_yaml

    submission = _valid(submissions)
    assert eval_results_benchmark(submission, "real", None)[0] is None  # partial: never a benchmark score
    submission["labels"]["images"], submission["coverage"] = 8, 1.0
    benchmark, why_not = eval_results_benchmark(submission, "real", None)
    assert benchmark is None and "its labels (real) are no Hub dataset; name one with --benchmark" in why_not
    assert eval_results_benchmark(submission, "me/real-labels", None) == ("me/real-labels", "")
    [entry] = yaml.safe_load(eval_results_yaml(submission, "me/real-labels"))
    assert set(entry) == {"dataset", "value", "date", "source", "notes"}
    assert entry["dataset"] == {"id": "me/real-labels", "task_id": "imagenet_real_cwplus"}
    assert entry["value"] == 62.5 and entry["date"] == submission["created"][:10]
    assert entry["source"]["url"].startswith("https://")
    # Wilson for 5 of 8 by hand, z = 1.96: (10 + 3.8416 ± 1.96·√(7.5 + 3.8416)) / 23.6832 = [30.57%, 86.32%]
    sha = submission["labels"]["sha256"][:16]
    assert entry["notes"] == (
        f"ReaL labels (sha256 {sha}), 8 of 8 images; 95% CI 30.57-86.32; ImGT 50.00; protocol cwplus"
    )


def _valid(submissions):
    return json.loads((submissions / "scripted_cwplus__imagenet_real_cwplus.json").read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("labels"), "missing field 'labels'"),
        (lambda s: s.update(world_size="2"), "field 'world_size' must be an integer"),
        (lambda s: s["metrics"].update(real_A=1.5), "metric real_A = 1.5 is outside [0, 1]"),
        (lambda s: s["metrics"].update(oop_A=-0.1), "metric oop_A = -0.1 is outside [0, 1]"),
        (lambda s: s["metrics"].update({"count_S+": 6}), "count_S = 7 is not count_S+ + count_S-"),
        (lambda s: s["metrics"].update(count_A=9), "count_A = 9 does not add up from the categories"),
        (lambda s: s["metrics"].update({"real_S": 0.99}), "real_S is not the count-weighted mean of its parts"),
        (lambda s: s["metrics"].update({"real_A": 0.99}), "real_A is not the count-weighted mean of its parts"),
        (lambda s: s["metrics"].pop("real_A"), "metrics missing: real_A"),
        (lambda s: s.update(protocol="ow"), "does not match protocol 'ow'"),
        (lambda s: s.update(protocol="cw"), "does not match protocol 'cw'"),
        (lambda s: s["labels"].update(set="regt"), "labels.set must be 'real'"),
        (lambda s: s.update(schema_version=2), "schema must be lmms-eval-imagenet-regt/submission version 3"),
        (lambda s: s["metrics"].update({"real_M+": 0.5}), "real_M+ = 0.5 is no whole number of the 1 images"),
        (lambda s: s["intervals"].update(real_A=[0.7, 0.9]), "interval of real_A must be [low, high] with"),
        (lambda s: s["intervals"].update(count_A=[0, 1]), "interval 'count_A' names no reported accuracy"),
        (lambda s: s.pop("intervals"), "missing field 'intervals'"),
        (lambda s: s["labels"].update(sha256="abc"), "labels.sha256 must be a sha256 hex digest"),
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
    with pytest.raises(InputError, match=r"cwplus\.json: invalid submission: labels\.sha256 .* does not match"):
        validate_file(path, expected_labels_hash="0" * 64)
    assert "valid" in cli("validate", path, "--labels", "real").stdout  # a subset run is on the whole ReaL set
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    failed = cli("validate", broken, path, "--labels-hash", "0" * 64, check=False)
    assert failed.returncode == 1
    assert "broken.json:1: not valid JSON" in failed.stderr and "does not match the expected labels" in failed.stderr


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


def _cell(percent, n, rank):
    """A leaderboard cell: the accuracy, scipy's Wilson interval of its count, n and the rank."""
    return f"{percent:.2f} {_wilson(round(percent / 100 * n), n)} n={n} #{rank}"


def test_leaderboard_markdown_shows_intervals_counts_label_sets_and_partial_runs_unranked(board):
    text = (board / "leaderboard.md").read_text()
    assert text.startswith("# ImageNet-1k: ReGT and ReaL labels\n")  # both label sets are shown
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == 4 + len(reference_rows()) == 17
    assert sum("†" in row for row in rows) == 13
    # EVA-02 has the best ReGT A of the paper's rows: rank 1 among them; intervals from Table 2's counts
    eva = "| EVA-02 ViT-L-14-448 † | cw | regt | 31,250 | 100.0% | paper | "
    assert eva + f"{_cell(90.13, 31_250, 1)} | {_cell(90.04, 31_250, 1)} |" in text
    # the scripted runs cover 8 of the 50,000 ReaL images: shown, marked ‡, never ranked; 8 < 30 images: italic.
    # Wilson by hand, z = 1.96: 4 of 8 → 0.5 ± 0.2848; 5 of 8 → [30.6, 86.3]
    scripted = "| **scripted/cwplus** ‡ | imagenet_real_cwplus | real | 8 | 0.0% | – (partial) | "
    assert scripted + "_50.00 [21.5, 78.5] n=8_ | _62.50 [30.6, 86.3] n=8_ |" in text
    assert "covers 0.0% of the label set's 50000 images" in text
    assert r"- paper: the paper's published rows \(Kisel et al. 2026, Table 3\): ReGT labels, 31,250 images" in text


def test_leaderboard_figures_decode_and_show_every_model(board):
    from PIL import Image

    for name in ("imgt_to_labels.png", "accuracy_by_category.png"):
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
        assert page.locator("#leaderboard tbody tr.partial").count() == 4

        def column(index):
            return [
                float(v) if v else None
                for v in page.eval_on_selector_all(
                    "#leaderboard tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.value)"
                )
            ]

        # columns: model, task, labels, images, coverage, ranked in, ImGT A, Labels A, ...
        page.click("#leaderboard th:nth-child(8)")  # Labels A
        values = column(7)
        assert values == sorted(values, reverse=True) and page.locator("th.sorted-desc").inner_text() == "Labels A"
        page.click("#leaderboard th:nth-child(7)")  # ImGT A
        page.click("#leaderboard th:nth-child(7)")  # again: ascending
        values = column(6)
        assert values == sorted(values) and page.locator("th.sorted-asc").count() == 1
        first = page.locator("#leaderboard tbody tr").first.inner_text()
        assert "scripted" in first  # the scripted runs have the lowest ImGT accuracy
        shot = ARTIFACTS / "leaderboard.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_a_real_classifier_on_the_shared_images_is_shown_beside_the_paper_unranked(efficientnet_lite0_run, tmp_path):
    """The real EfficientNet-Lite0 weights on the 1,300 shared images, labelled by ReaL, beside the paper's
    ReGT rows: its row says what it was measured on and takes no rank among them.

    Screenshot (test-artifacts/leaderboard_efficientnet.png), looked at: the title reads "ImageNet-1k: ReGT
    and ReaL labels: leaderboard"; the groups list names G1 (ReaL labels, 1,300 images) and the paper's rows
    (ReGT, 31,250 images of 625 classes); the EfficientNet-Lite0 row is first, orange (partial, ‡), shows
    "real", "1,300", "2.6%" and "– (partial)" and no rank anywhere; its M− cell (68.42 [46.0, 84.6] n=19) is
    light grey; every cell has its interval and n on two small grey lines; the paper's rows below are grey
    italics ranked #1.. among themselves, EVA-02 #1 in ImGT A and ReGT A, several S− and M− ranks marked ≈.
    """
    subs, out = tmp_path / "subs", tmp_path / "board"
    printed = cli("submit", efficientnet_lite0_run["results_path"], "--out", subs).stdout
    assert "no .eval_results:" in printed
    cli("leaderboard", *subs.glob("*.json"), "--out", out)
    text = (out / "leaderboard.md").read_text()
    assert text.startswith("# ImageNet-1k: ReGT and ReaL labels\n")
    row = next(line for line in text.splitlines() if "tf\\_efficientnet\\_lite0" in line)
    assert "| imagenet_real_cw | real | 1,300 | 2.6% | – (partial) | " in row and "#" not in row
    # independently: classes joined by the shipped equivalence pairs; ImGT right = the same group
    records, real = efficientnet_lite0_run["records"], load_ground_truth("real")
    same = equivalent_classes()
    groups = {i: {min(same[c]) for c in real[i].labels} for i in records}
    imgt_right = sum(min(same[records[i]["classes"][0]]) == min(same[real[i].imgt]) for i in records)
    assert imgt_right == 1084  # the timm loop's 1083 exact matches and one equivalent class
    assert f"| 83.38 {_wilson(1084, 1300)} n=1300 |" in row
    m_minus = sum(len(groups[i]) > 1 and min(same[real[i].imgt]) not in groups[i] for i in records)
    cells = row.split(" | ")
    assert cells[13].startswith("_") and cells[13].endswith(f" n={m_minus}_") and m_minus < 30
    eva = next(line for line in text.splitlines() if line.startswith("| EVA-02 ViT-L-14-448 †"))
    assert eva.split(" | ")[7].endswith(" #1")  # still first among the paper's rows, by ReGT A

    with browser_context(viewport={"width": 1600, "height": 1000}) as context:
        page = context.new_page()
        page.goto((out / "leaderboard.html").as_uri())
        mine = page.locator("#leaderboard tbody tr.partial")
        assert mine.count() == 1 and mine.locator(".rank").count() == 0
        assert [mine.locator("td").nth(i).inner_text() for i in (2, 3, 5)] == ["real", "1,300", "– (partial)"]
        assert mine.locator("td.few").count() == 1 and "n=" + str(m_minus) in mine.locator("td.few").inner_text()
        assert page.locator("h1").inner_text() == "ImageNet-1k: ReGT and ReaL labels: leaderboard"
        shot = ARTIFACTS / "leaderboard_efficientnet.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
