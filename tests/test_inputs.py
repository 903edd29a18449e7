"""Every file a user or a stranger hands us: one clear line and exit code 2, never a traceback, never a
score or a file that should not exist.

The CLI runs in this process (`cli.main`), so each case is fast; a few cases also run the installed command.
Fuzzing feeds each reader random bytes, deep nesting and huge values: a reader either accepts the file or
raises the package's InputError, nothing else.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lmms_eval_imagenet_regt import InputError, load_ground_truth
from lmms_eval_imagenet_regt.cli import main

SEA_SNAKE = "ILSVRC2012_val_00000001"  # original label 65


def run(capsys, *args: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `imagenet-regt ARGS`, run in this process."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args: object) -> str:
    code, out, err = run(capsys, *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("imagenet-regt: error: "), (code, err)
    assert "Traceback" not in err and not out
    return err.strip()


def predictions_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


# --- score: predictions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        ("list(range(1000))", "must be a class index, a class name, or the classes of one duplicate name"),
        ("[0, 1]", "must be a class index, a class name, or the classes of one duplicate name"),
        ('"65"', "must be a class index, a class name, or the classes of one duplicate name (got '65')"),
        ("65.0", "(got 65.0)"),
        ("NaN", "(got nan)"),
        ("12.5", "(got 12.5)"),
        ("true", "(got True)"),
        ("1000", "class index outside 0..999 (got 1000)"),
        (str(10**400), "class index outside 0..999"),
        ("{}", "(got {})"),
    ],
)
def test_a_prediction_is_a_class_index_a_name_or_a_duplicate_names_classes(capsys, tmp_path, prediction, message):
    value = repr(list(range(1000))) if prediction == "list(range(1000))" else prediction
    path = predictions_file(tmp_path, f'{{"image_id": "{SEA_SNAKE}", "prediction": {value}}}')
    line = refused(capsys, "score", path, "--gt", "imgt")
    assert f"{path}:1: 'prediction'" in line and message in line and len(line) < 400


def test_the_classes_of_one_duplicate_name_are_one_prediction(capsys, tmp_path):
    path = predictions_file(
        tmp_path,
        f'{{"image_id": "{SEA_SNAKE}", "prediction": [836, 837]}}',
        '{"image_id": "ILSVRC2012_val_00000002", "prediction": [744, 657]}',
        '{"image_id": "ILSVRC2012_val_00000003", "prediction_name": "sunglasses"}',
    )
    code, out, _ = run(capsys, "score", path, "--gt", "imgt", "--format", "json")
    assert code == 0 and json.loads(out)["images_scored"] == 3


def test_bad_values_are_named_by_their_real_line_in_a_long_file(capsys, tmp_path):
    from lmms_eval_imagenet_regt.labels.ground_truth import image_id_for_position

    lines = [json.dumps({"image_id": image_id_for_position(i), "prediction": 1}) for i in range(50_000)]
    lines[49_998] = json.dumps({"image_id": image_id_for_position(49_998), "prediction": 12.5})
    path = predictions_file(tmp_path, *lines)
    assert f"{path}:49999: 'prediction'" in refused(capsys, "score", path, "--gt", "imgt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no predictions"),
        ("\n\n", "no predictions"),
        (f'{{"image_id": "{SEA_SNAKE}"}}\n', ":1: a line needs 'prediction' or 'prediction_name'"),
        (f'{{"image_id": "{SEA_SNAKE}", "prediction": 1, "prediction_name": "x"}}\n', "not both"),
        ('{"image_id": 1, "prediction": 1}\n', ":1: not an ImageNet validation image id (got 1)"),
        (f'{{"image_id": "{SEA_SNAKE}", "prediction_name": 7}}\n', "'prediction_name' must be a string"),
        (f'{{"image_id": "{SEA_SNAKE}", "prediction": 1}}\n[1, 2]\n', ":2: a line needs an 'image_id'"),
        ("[" * 100_000 + "\n", ":1: not usable JSON: nested too deeply"),
    ],
)
def test_bad_prediction_files(capsys, tmp_path, content, message):
    path = tmp_path / "predictions.jsonl"
    path.write_text(content)
    assert message in refused(capsys, "score", path, "--gt", "imgt")


def test_label_files_are_read_whatever_their_encoding_says(capsys, tmp_path, shared_data):
    predictions = predictions_file(tmp_path, f'{{"image_id": "{SEA_SNAKE}", "prediction": 65}}')
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(f'{{"image_id": "{SEA_SNAKE}", "labels": [65]}}\n{{"image_id": "caf\xe9"}}\n'.encode("latin-1"))
    assert f"{labels}:2: not UTF-8 text" in refused(capsys, "score", predictions, "--gt", labels)
    csv = tmp_path / "real.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,original_label,proposed_labels\nILSVRC2012_val_00000001.JPEG,65,65\n")
    code, out, _ = run(capsys, "score", predictions, "--gt", csv, "--format", "json")
    assert code == 0 and json.loads(out)["categories"]["A"]["labels"] == 1.0
    real = tmp_path / "real.json"
    real.write_text("[[1], [2],\n [3]\n")
    assert f"{real}:3: not valid JSON" in refused(capsys, "score", predictions, "--gt", f"real={real}")
    expert = tmp_path / "expert.json"
    expert.write_text(json.dumps({SEA_SNAKE: {"old_label": 65, "new_label": 65, "label_type": "weird"}}))
    assert f"{expert} entry {SEA_SNAKE}: unknown label_type" in refused(capsys, "score", predictions, "--gt", expert)


def test_map_reads_any_bytes_without_a_traceback(capsys, tmp_path):
    answers = tmp_path / "answers.txt"
    answers.write_bytes(b"a kayak\n\xff\xfe broken\n")
    assert f"{answers}:2: not UTF-8 text" in refused(capsys, "map", answers)
    done = subprocess.run(
        [sys.executable, "-m", "lmms_eval_imagenet_regt", "map"], input=b"\xff\xfe\n", capture_output=True
    )
    assert done.returncode == 2 and b"standard input:1: not UTF-8 text" in done.stderr
    assert b"Traceback" not in done.stderr


# --- fuzzing every reader -----------------------------------------------------------------------------


def _garbage(rng: random.Random) -> bytes:
    """Random bytes, random JSON shapes, deep nesting, huge values."""
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    if kind == 1:
        return ("[" * rng.randrange(1_000, 200_000)).encode()
    if kind == 2:
        return json.dumps({"image_id": SEA_SNAKE, "prediction": 10 ** rng.randrange(20, 400)}).encode()
    if kind == 3:
        return json.dumps({"image_id": "x" * 1_000_000, "labels": [1e308] * 3}).encode()
    if kind == 4:
        value = rng.choice([None, True, -1, 1.5, "", [], {}, [[]], {"a": [1]}, "\ud800", 2**70])
        return json.dumps({"image_id": SEA_SNAKE, "labels": value, "prediction": value, "answer": value}).encode()
    return json.dumps([rng.choice([None, 1, "a", [1], {"b": 2}]) for _ in range(rng.randrange(1, 50))]).encode()


def _readers(tmp_path: Path):
    from lmms_eval_imagenet_regt.labels.equivalences import EquivalenceSet
    from lmms_eval_imagenet_regt.labels.vocabulary import ClassVocabulary
    from lmms_eval_imagenet_regt.models.replay import read_answers
    from lmms_eval_imagenet_regt.outputs.submission import validate_file
    from lmms_eval_imagenet_regt.predictions import read_predictions
    from lmms_eval_imagenet_regt.protocol.options import load_confusions

    vocabulary = ClassVocabulary.load()
    return {
        "predictions.jsonl": lambda p: read_predictions(p, vocabulary),
        "labels.jsonl": load_ground_truth,
        "real.json": lambda p: load_ground_truth(f"real={p}"),
        "expert.json": lambda p: load_ground_truth(f"expert={p}"),
        "flaws.csv": lambda p: load_ground_truth(f"flaws={p}"),
        "submission.json": validate_file,
        "answers.jsonl": read_answers,
        "names.json": lambda p: ClassVocabulary.load(str(p)),
        "equivalences.json": lambda p: EquivalenceSet.load(str(p)),
        "confusions.json": lambda p: load_confusions(str(p)),
    }


def test_every_reader_accepts_a_file_or_names_what_is_wrong(tmp_path):
    rng = random.Random(13)
    for name, reader in _readers(tmp_path).items():
        for attempt in range(12):
            path = tmp_path / f"{attempt}-{name}"
            path.write_bytes(_garbage(rng))
            try:
                reader(path)
            except InputError as error:
                message = str(error)
                assert str(path) in message and "\n" not in message and len(message) < 1000, (name, message)


def test_samples_and_decisions_readers_accept_a_file_or_name_what_is_wrong(scripted_runs, tmp_path):
    import shutil

    from lmms_eval_imagenet_regt.outputs.review import read_decisions
    from lmms_eval_imagenet_regt.outputs.runs import read_samples

    run = scripted_runs["imagenet_real_cw"]
    shutil.copy(run["results_path"], tmp_path)
    samples = tmp_path / run["samples_path"].name
    record = dict(run["records"][SEA_SNAKE.replace("00000001", "00000347")])
    key = {"export_id": "e", "images": {"ILSVRC2012_val_00000347": {"candidates": [{"class": 472}]}}}
    rng = random.Random(14)
    for attempt in range(30):
        garbage = _garbage(rng)
        if attempt % 3 == 0:  # a record with one field replaced by a hostile value
            field = rng.choice(sorted(record))
            value = rng.choice([None, True, -1, 1.5, "", [], {}, [[]], "x" * 5000, 10**30, [1000], ["a"], {"a": 1}])
            garbage = json.dumps({"images": {**record, field: value}}).encode()
        for path, reader in ((samples, read_samples), (tmp_path / "decisions.json", lambda p: read_decisions(p, key))):
            path.write_bytes(garbage)
            try:
                reader(path)
            except InputError as error:
                assert str(path) in str(error) and "\n" not in str(error), str(error)


# --- validate and leaderboard: what a stranger submits ----------------------------------------------------


@pytest.fixture(scope="module")
def valid_submission(scripted_runs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("subs")
    main(["submit", str(scripted_runs["imagenet_real_cwplus"]["results_path"]), "--out", str(out), "--allow-failed"])
    return json.loads(next(out.glob("*imagenet_real_cwplus.json")).read_text())


def _write(tmp_path: Path, submission: dict, name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(submission))
    return path


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["model"].update(id=["a", "b"]), "model.id must be a string"),
        (lambda s: s["model"].update(id={"x": 1}), "model.id must be a string"),
        (lambda s: s["model"].update(id="m" * 1_000_000), "model.id is longer than 200 characters"),
        (lambda s: s["model"].update(id="a|b\n| evil | 99"), "model.id holds control characters"),
        (lambda s: s["model"].update(revision=5), "model.revision must be a string"),
        (lambda s: s["metrics"].update(answer_length=float("nan")), "answer_length must be a non-negative number"),
        (lambda s: s["metrics"].update(answer_length="long"), "answer_length must be a non-negative number"),
        (lambda s: s["metrics"].update(real_A=float("inf")), "metric real_A = inf is outside [0, 1]"),
        (lambda s: s["outcomes"].update(failed=-1), "outcomes.failed must be a non-negative integer"),
        (lambda s: s["outcomes"].update(parsed=100), "outcomes add up to 105, not images.scored = 8"),
        (lambda s: s["images"].update(scored="8"), "images.scored must be a non-negative integer"),
        (lambda s: s.update(coverage=2), "coverage must be images.scored / labels.images"),
        (lambda s: s["settings"].update(protocol="cw"), "settings.protocol 'cw' differs from protocol 'cwplus'"),
        (lambda s: s["settings"].update(encodr="x"), "settings: unknown protocol setting 'encodr'"),
        (lambda s: s["versions"].update(torch=2), "versions must map package names to version strings"),
        (lambda s: s.update(decoding={"x": "y" * 100_000}), "decoding is larger than 10000 characters"),
    ],
)
def test_validate_refuses_what_the_leaderboard_could_not_show(capsys, tmp_path, valid_submission, change, problem):
    submission = json.loads(json.dumps(valid_submission))
    change(submission)
    path = _write(tmp_path, submission)
    code, out, err = run(capsys, "validate", path)
    assert code == 1 and problem in err and err.count("\n") == 1 and len(err) < 2000, err
    assert refused(capsys, "leaderboard", path, "--out", tmp_path / "board").startswith(f"imagenet-regt: error: {path}")
    assert not (tmp_path / "board").exists()


def test_every_category_must_agree_with_its_parts(capsys, tmp_path, valid_submission):
    submission = json.loads(json.dumps(valid_submission))
    metrics = submission["metrics"]
    for key in list(metrics):
        if key.startswith(("real_", "imgt_", "im_and_re_")):
            metrics[key] = 0.0 if key[-1] in "+-N" else metrics[key]
    metrics["real_A"] = metrics["imgt_A"] = 1.0
    code, _, err = run(capsys, "validate", _write(tmp_path, submission))
    assert code == 1 and "imgt_A is not the count-weighted mean of its parts" in err


def test_validate_checks_every_file_it_is_given(capsys, tmp_path, valid_submission):
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\xff{")
    good = _write(tmp_path, valid_submission, "good.json")
    code, out, err = run(capsys, "validate", broken, good, tmp_path / "missing.json")
    assert code == 1 and f"{good}: valid" in out
    assert f"{broken}:1: not UTF-8 text" in err and f"{tmp_path / 'missing.json'}: no such file" in err


def test_the_leaderboard_shows_names_as_plain_text(tmp_path, valid_submission):
    """Markdown special characters are escaped (a `|` cannot add a column or a row, no raw HTML or
    links), and `$x^2$` is not rendered as math in the figures: the PNGs are written."""
    from PIL import Image

    paths = []
    for n, name in enumerate(["a | b | 99 | 99", "<script>alert(1)</script>", "[x](javascript:alert(1))", "$x^2$"]):
        submission = json.loads(json.dumps(valid_submission))
        submission["model"]["id"] = name
        paths.append(_write(tmp_path, submission, f"{n}.json"))
    main(["leaderboard", *map(str, paths), "--out", str(tmp_path / "board"), "--no-reference"])
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 4 and all(row.count(" | ") == rows[0].count(" | ") for row in rows)
    assert "<script>" not in text and "](javascript:" not in text and "&lt;script&gt;" in text
    html = (tmp_path / "board" / "leaderboard.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for png in ("imgt_to_labels.png", "accuracy_by_category.png"):
        with Image.open(tmp_path / "board" / png) as image:
            assert "$x^2$" in json.loads(image.info["Description"])[-1] or any(
                "$x^2$" in label for label in json.loads(image.info["Description"])
            )


# --- review import and the replay model ---------------------------------------------------------------


def test_review_decisions_name_each_image_once(capsys, tmp_path):
    from lmms_eval_imagenet_regt.outputs.review import read_decisions

    key = {"export_id": "e", "images": {"ILSVRC2012_val_00000347": {"candidates": [{"class": 472}]}}}
    decision = {"candidates": {"472": "right"}, "done": True}
    path = tmp_path / "decisions.json"
    path.write_text(
        json.dumps(
            {
                "export_id": "e",
                "decisions": {"ILSVRC2012_val_00000347": decision, "ILSVRC2012_val_00000347.JPEG": decision},
            }
        )
    )
    with pytest.raises(InputError, match=r"decisions\.json entry ILSVRC2012_val_00000347\.JPEG: the same image as"):
        read_decisions(path, key)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"image_id": SEA_SNAKE, "answer": None}], ":1: 'answer' must be a string"),
        ([{"image_id": SEA_SNAKE, "answer": 65}], ":1: 'answer' must be a string"),
        ([{"image_id": SEA_SNAKE, "answer": ["a"]}], ":1: 'answer' must be a string"),
        ([{"image_id": SEA_SNAKE, "answer": "a"}, {"image_id": f"{SEA_SNAKE}.JPEG", "answer": "b"}], ":2: duplicate"),
    ],
)
def test_the_replay_model_refuses_answers_that_are_not_text(tmp_path, lines, message):
    from lmms_eval_imagenet_regt.models.replay import read_answers

    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(InputError, match=message):
        read_answers(path)


@pytest.mark.slow
def test_the_replay_model_refusal_is_one_line_through_lmms_eval(real_dataset, tmp_path):
    from tests.lmms_run import lmms_eval

    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"image_id": SEA_SNAKE, "answer": None}) + "\n")
    done = lmms_eval(
        ["--model", "imagenet_regt_replay", "--model_args", f"answers={path}", "--tasks", "imagenet_real_cw"],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    ours = [line for line in done.stderr.splitlines() if line.startswith("imagenet-regt: error:")]
    assert done.returncode == 2 and ours == [
        f"imagenet-regt: error: {path}:1: 'answer' must be a string (the model's text) (got None)"
    ]
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("out/**/*.json"))
