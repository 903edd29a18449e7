"""The second annotation pass: export disagreements, review them in Chromium, import a new label version.

Two replay "models" answer closed world on the 16 real images (ReaL labels: 12 S+, 2 M+, 2 S-). Where
they disagree with the labels, by hand (class indices):

    image  labels            model A  model B
    347    472               625      -
    355    260               -        388
    363    133               132      132
    580    480 582 760 886   -        527
    699    396 (ImGT 397)    397      397
    796    281 282           285      -
    890    25                26       -
    947    431 (ImGT 516)    516      520

(`-`: agrees; A gives no answer on 560.) So 8 images disagree with one model, 3 with both, 2 are S-.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest

from lmms_eval_imagenet_regt import ClassVocabulary, InputError
from lmms_eval_imagenet_regt.labels.ground_truth import load_ground_truth
from lmms_eval_imagenet_regt.outputs.dataset import build_dataset, read_labels
from lmms_eval_imagenet_regt.outputs.review import Run, export_review, import_review
from tests.browser import ARTIFACTS, browser_context
from tests.lmms_run import regt_cli, run_lmms_eval

pytestmark = pytest.mark.slow

NAMES = ClassVocabulary.load().names
MODEL_A = {347: 625, 363: 132, 560: None, 699: 397, 796: 285, 890: 26, 947: 516}
MODEL_B = {355: 388, 363: 132, 580: 527, 699: 397, 947: 520}
DISAGREE = {347: "A", 355: "B", 363: "AB", 580: "B", 699: "AB", 796: "A", 890: "A", 947: "AB"}


def image_id(number: int) -> str:
    return f"ILSVRC2012_val_{number:08d}"


@pytest.fixture(scope="module")
def parent(sixteen_image_dataset) -> str:
    """The label set under review, as `--gt` takes it: the dataset's own labels."""
    return f"regt={sixteen_image_dataset / 'data'}"


@pytest.fixture(scope="module")
def runs(sixteen_image_dataset, tmp_path_factory) -> dict[str, str]:
    """Samples files of the two replay models' closed-world runs."""
    labels = read_labels(sixteen_image_dataset)
    folder, samples = tmp_path_factory.mktemp("review-runs"), {}
    for name, answers in (("A", MODEL_A), ("B", MODEL_B)):
        rows = []
        for key in sorted(labels.images):
            number = int(key.rsplit("_", 1)[1])
            index = answers.get(
                number, labels[key].imgt if number not in (699, 947) else next(iter(labels[key].labels))
            )
            rows.append({"image_id": key, "answer": "" if index is None else NAMES[index]})
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        run = run_lmms_eval(
            ["--model", "imagenet_regt_replay", "--model_args", f"answers={path}", "--tasks", "imagenet_real_cw"],
            folder / name,
            {"IMAGENET_REAL_DATA": str(sixteen_image_dataset)},
        )
        samples[name] = f"{name}={run['imagenet_real_cw']['samples_path']}"
    return samples


def cli(*args: object, check: bool = True) -> subprocess.CompletedProcess:
    return regt_cli("review", *args, check=check)


def test_export_selects_the_disagreements_by_hand(runs, parent, sixteen_image_dataset, tmp_path):
    truth, both = load_ground_truth(parent), [Run.load(spec) for spec in runs.values()]
    key = export_review(both, truth, sixteen_image_dataset, tmp_path / "all")
    assert sorted(key["images"]) == [image_id(n) for n in sorted(DISAGREE)]
    assert sorted(export_review(both, truth, sixteen_image_dataset, tmp_path / "two", min_disagree=2)["images"]) == [
        image_id(n) for n, who in sorted(DISAGREE.items()) if who == "AB"
    ]
    only_b = export_review(both, truth, sixteen_image_dataset, tmp_path / "b", models=("B",), categories=("S-",))
    assert sorted(only_b["images"]) == [image_id(699), image_id(947)]
    sample = export_review(both, truth, sixteen_image_dataset, tmp_path / "max", max_images=3, seed=1)["images"]
    again = export_review(both, truth, sixteen_image_dataset, tmp_path / "max2", max_images=3, seed=1)["images"]
    assert len(sample) == 3 and sample == again and set(sample) <= set(key["images"])
    # candidates: labels, ImGT and the models' answers, each once, with their sources kept in the key only
    atm = {c["class"]: c["sources"] for c in key["images"][image_id(580)]["candidates"]}
    assert atm == {480: ["labels", "imgt"], 582: ["labels"], 760: ["labels"], 886: ["labels"], 527: ["model:B"]}
    cradle = {c["class"]: c["sources"] for c in key["images"][image_id(947)]["candidates"]}
    assert cradle == {431: ["labels"], 516: ["imgt", "model:A"], 520: ["model:B"]}
    page = (tmp_path / "all" / "page" / "data.js").read_text()
    assert "model:" not in page and "labels" not in page.replace('"classes"', "")
    assert sorted(p.name for p in (tmp_path / "all" / "page" / "images").iterdir()) == [
        f"{image_id(n)}.JPEG" for n in sorted(DISAGREE)
    ]


def _press_candidate(page, index: int) -> None:
    """Press the number key of the candidate showing class `index` (the order is shuffled)."""
    classes = page.eval_on_selector_all("#candidates .candidate", "rows => rows.map(r => Number(r.dataset.class))")
    page.keyboard.press(str(classes.index(index) + 1))


def _show(page, number: int) -> None:
    while image_id(number) not in page.inner_text("#image-id"):
        page.keyboard.press("ArrowRight")


def test_review_in_chromium_then_import_a_new_label_version(runs, parent, sixteen_image_dataset, tmp_path):
    out = tmp_path / "review"
    cli(
        "export",
        "--run",
        runs["A"],
        "--run",
        runs["B"],
        "--gt",
        parent,
        "--images",
        sixteen_image_dataset,
        "--out",
        out,
    )
    decisions_file = tmp_path / "decisions.json"
    with browser_context(viewport={"width": 1300, "height": 850}, accept_downloads=True) as context:
        page = context.new_page()
        page.goto((out / "page" / "index.html").as_uri())
        assert page.inner_text("#progress") == "0 / 8 reviewed"
        # 347: the model's lifeboat is right, the kayak label wrong (keys)
        _show(page, 347)
        _press_candidate(page, 625)
        _press_candidate(page, 472)
        _press_candidate(page, 472)  # right, then wrong
        page.keyboard.press("Enter")
        # 355: keep the label (clicks); Enter moves on to the next unreviewed image, 363
        page.click("#candidates .candidate[data-class='260']")
        page.click("#candidates .candidate[data-class='388']")
        page.click("#candidates .candidate[data-class='388']")
        page.click("#done")
        assert image_id(363) in page.inner_text("#image-id")
        page.keyboard.press("u")  # 363: not sure
        page.keyboard.press("Enter")
        for index in (480, 582, 760, 886, 527):  # 580: labels and the model's answer
            _press_candidate(page, index)
        page.keyboard.press("Enter")
        _press_candidate(page, 397)  # 699: the model's (and ImGT's) pufferfish, not the lionfish
        _press_candidate(page, 396)
        _press_candidate(page, 396)
        page.keyboard.press("Enter")
        _press_candidate(page, 281)  # 796: tabby right, and a class found by search
        page.keyboard.press("/")
        page.keyboard.type("lyn")
        assert page.locator("#matches li").first.inner_text() == f"{NAMES[287]} (287)"
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        assert page.locator("#added .chip[data-class='287']").count() == 1
        page.keyboard.press("Enter")
        assert image_id(890) in page.inner_text("#image-id")
        page.keyboard.press("ArrowRight")  # 890: left unreviewed
        page.click("#no-class")  # 947
        page.keyboard.press("Enter")  # back to the one image not done, 890
        assert page.inner_text("#progress") == "7 / 8 reviewed" and image_id(890) in page.inner_text("#image-id")
        page.reload()
        assert page.inner_text("#progress") == "7 / 8 reviewed"
        page.keyboard.press("ArrowLeft")
        assert image_id(796) in page.inner_text("#image-id")
        assert page.locator("#added .chip[data-class='287']").count() == 1
        assert "right" in page.get_attribute("#candidates .candidate[data-class='281']", "class")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-page.png"))
        with page.expect_download() as download:
            page.keyboard.press("e")
        download.value.save_as(decisions_file)
    assert (ARTIFACTS / "review-page.png").stat().st_size > 20_000

    new = tmp_path / "labels-v2.jsonl"
    done = cli("import", out, decisions_file, "--gt", parent, "--reviewer", "Ada", "--out", new)
    assert "7 images reviewed, 6 changed" in done.stdout
    rows = {int(r["image_id"][-8:]): r for r in map(json.loads, new.read_text().splitlines())}
    assert len(rows) == 16
    expected = {347: [625], 355: [260], 363: [133], 580: [480, 527, 582, 760, 886], 699: [397], 796: [281, 287]}
    expected |= {947: [], 890: [25], 361: [300]}
    assert {n: rows[n]["labels"] for n in expected} == expected
    assert [n for n, r in rows.items() if r["not_sure"]] == [363]
    assert sorted(n for n, r in rows.items() if "review" in r) == [347, 363, 580, 699, 796, 947]
    assert rows[699]["review"] == {
        "outcome": "took model",
        "before": [396],
        "reviewer": "Ada",
        "date": date.today().isoformat(),
    }
    provenance = json.loads((tmp_path / "labels-v2.provenance.json").read_text())
    assert provenance["parent"]["sha256"] == load_ground_truth(parent).sha256
    assert provenance["labels_sha256"] == load_ground_truth(f"regt={new}").sha256 != provenance["parent"]["sha256"]
    assert provenance["summary"] == {
        "S+": {"took model": 1, "kept label": 1, "combined": 0, "other": 0, "not sure": 1},
        "S-": {"took model": 1, "kept label": 0, "combined": 0, "other": 1, "not sure": 0},
        "M+": {"took model": 0, "kept label": 0, "combined": 1, "other": 1, "not sure": 0},
    }
    assert "| S+ | 3 | 1 (33%) | 1 (33%) | 0 (0%) | 0 (0%) | 1 (33%) |" in done.stdout
    assert (tmp_path / "labels-v2.summary.png").stat().st_size > 5_000

    # the new version is a label set like any other: re-scoring model A (hand count: 9/16 before, 12/16
    # after: lifeboat and pufferfish become right, the cradle image has no label (N counts right))
    before = _rescore(runs["A"], parent)
    after = _rescore(runs["A"], f"regt={new}")
    assert (before["real_A"], after["real_A"]) == (9 / 16, 12 / 16)  # the reviewed version is still ReaL-based
    # categories move: 347 (now the lifeboat only) S+ to S-, 699 S- to S+, 947 S- to N, and 796 M+ to M-
    # (its ImGT, 282, was left unmarked, so it counts as wrong)
    counts = [after[f"count_{c}"] for c in ("S+", "S-", "M+", "M-", "N")]
    assert counts == [12, 1, 1, 1, 1]
    build_dataset(f"regt={new}", tmp_path / "dataset-v2")
    assert read_labels(tmp_path / "dataset-v2").sha256 == provenance["labels_sha256"]


def _rescore(run: str, gt: str) -> dict:
    samples = run.split("=", 1)[1]
    command = [sys.executable, "-m", "lmms_eval_imagenet_regt", "rescore", samples, "--gt", gt, "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["imagenet_real_cw"]["metrics"]


def test_bad_decisions_are_refused_with_a_clear_message(runs, parent, sixteen_image_dataset, tmp_path):
    truth = load_ground_truth(parent)
    key = export_review([Run.load(spec) for spec in runs.values()], truth, sixteen_image_dataset, tmp_path / "r")
    good = {"candidates": {"472": "wrong", "625": "right"}, "added": [], "done": True}
    cases = {
        "another export": ({"export_id": "0123456789abcdef", "decisions": {}}, "made for another export"),
        "unknown image": (
            {"export_id": key["export_id"], "decisions": {image_id(361): good}},
            "not in this export",
        ),
        "unknown class": (
            {"export_id": key["export_id"], "decisions": {image_id(347): {**good, "added": [1200]}}},
            "unknown class",
        ),
        "not a candidate": (
            {"export_id": key["export_id"], "decisions": {image_id(347): {**good, "candidates": {"3": "right"}}}},
            "not a candidate",
        ),
        "nothing right": (
            {
                "export_id": key["export_id"],
                "decisions": {image_id(347): {"candidates": {"472": "wrong"}, "done": True}},
            },
            "no class right or added",
        ),
    }
    for name, (decisions, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(decisions))
        with pytest.raises(InputError, match=message) as error:
            import_review(tmp_path / "r", path, truth, tmp_path / "new.jsonl", reviewer="Ada")
        assert str(path) in str(error.value), name
    with pytest.raises(InputError, match="the export was made from other labels"):
        import_review(tmp_path / "r", path, load_ground_truth("imgt"), tmp_path / "new.jsonl", reviewer="Ada")
    failed = cli(
        "import",
        tmp_path / "r",
        tmp_path / "unknown image.json",
        "--gt",
        parent,
        "--reviewer",
        "Ada",
        "--out",
        tmp_path / "new.jsonl",
        check=False,
    )
    assert failed.returncode == 2 and "not in this export" in failed.stderr and "Traceback" not in failed.stderr
    assert not (tmp_path / "new.jsonl").exists()
