"""A number you can trust: each failure mode of a real run gives the right number or a clear refusal.

Through the real lmms-eval CLI on the first 8 shared images (see test_e2e_scripted.py for their labels).
Refusals are checked to come before any model loads: the runs name a model checkpoint that does not exist,
so a refusal that came later would be the model's error, not ours.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lmms_eval_imagenet_regt import ClassVocabulary, load_ground_truth
from lmms_eval_imagenet_regt.lmms.plugin import tasks_dir
from lmms_eval_imagenet_regt.outputs.dataset import build_dataset, read_labels
from tests.conftest import write_answers
from tests.lmms_run import lmms_eval, metric, run_lmms_eval

pytestmark = pytest.mark.slow
NAMES = ClassVocabulary.load().names
#: A model that cannot load: a refusal that names our problem came before lmms-eval loaded the model.
NO_MODEL = ["--model", "qwen3_vl", "--model_args", "pretrained=/nonexistent/checkpoint,device=cpu,device_map=cpu"]


def refused(args: list[str], tmp_path, env: dict[str, str]) -> str:
    """Run lmms-eval expecting a refusal: exit 2, one line of ours on stderr, nothing written."""
    done = lmms_eval([*NO_MODEL, *args], tmp_path / "out", env)
    ours = [line for line in done.stderr.splitlines() if line.startswith("imagenet-regt: error:")]
    assert done.returncode == 2 and len(ours) == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "nonexistent/checkpoint" not in done.stderr
    assert not (tmp_path / "out").exists()
    return ours[0]


# --- 1. two tasks, one call, two label sets -------------------------------------------------------------


@pytest.fixture(scope="module")
def regt_dataset(eight_images, real_dataset, tmp_path_factory):
    """ReGT-format labels for the 8 images that differ from ReaL: kayak also a paddle (M+), tiger beetle
    relabelled ladybug (S-), railroad car no label (N), the ATM only itself (S+)."""
    real = read_labels(real_dataset)
    changes = {0: [472, 693], 2: [301], 5: [], 6: [480]}
    rows = [
        {"image_id": i, "labels": changes.get(n, sorted(real[i].labels))} for n, i in enumerate(sorted(real.images))
    ]
    folder = tmp_path_factory.mktemp("regt-labels")
    labels = folder / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_dataset(f"regt={labels}", folder / "dataset", images=eight_images)
    return folder / "dataset"


def test_two_label_sets_in_one_call_equal_their_own_runs(regt_dataset, real_dataset, scripted_answers, tmp_path):
    """CW answers (FREE_ANSWERS): right under ReGT on kayak (M+) and the railroad car (N, no label: right by
    rule) = 2/8; under ReaL on kayak, tiger beetle and the ATM's vending machine = 3/8; ImGT 2/8 for both."""
    env = {"IMAGENET_REGT_DATA": str(regt_dataset), "IMAGENET_REAL_DATA": str(real_dataset)}
    replay = ["--model", "imagenet_regt_replay", "--model_args", f"answers={scripted_answers}"]
    both = run_lmms_eval([*replay, "--tasks", "imagenet_regt_cw,imagenet_real_cw"], tmp_path / "both", env)
    regt = run_lmms_eval([*replay, "--tasks", "imagenet_regt_cw"], tmp_path / "regt", env)["imagenet_regt_cw"]
    real = run_lmms_eval([*replay, "--tasks", "imagenet_real_cw"], tmp_path / "real", env)["imagenet_real_cw"]
    assert (metric(regt, "regt_A"), metric(regt, "imgt_A"), metric(regt, "count_N")) == (2 / 8, 2 / 8, 1)
    assert (metric(regt, "count_M+"), metric(regt, "count_S-"), metric(regt, "regt_S-")) == (1, 1, 0.0)
    assert (metric(real, "real_A"), metric(real, "imgt_A"), metric(real, "count_N")) == (3 / 8, 2 / 8, 0)
    for task, solo in (("imagenet_regt_cw", regt), ("imagenet_real_cw", real)):
        assert both[task]["report"]["metrics"] == solo["report"]["metrics"], task
        assert both[task]["report"]["labels"] == solo["report"]["labels"], task
        assert both[task]["records"] == solo["records"], task
    assert regt["report"]["labels"]["sha256"] == load_ground_truth(str(regt_dataset / "data")).sha256
    assert real["report"]["labels"]["sha256"] == load_ground_truth("real").sha256


# --- 2. failed API requests, with the real `openai` client against a local server ----------------------


class _FakeChatServer(ThreadingHTTPServer):
    """A chat-completions endpoint on 127.0.0.1 that recognises each image and answers by a script:
    an HTTP 400 (the request fails), `null` content, an empty string, or the image's class name."""

    def __init__(self, thumbnails: dict[str, object], script: dict[str, object]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thumbnails, self.script, self.requests = thumbnails, script, []


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802  (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        parts = body["messages"][-1]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        image_id = _nearest(self.server.thumbnails, base64.b64decode(url.split(",", 1)[1]))
        answer = self.server.script[image_id]
        if answer == 400:
            self._send(400, {"error": {"message": "bad request (scripted)", "type": "invalid_request_error"}})
            return
        message = {"role": "assistant", "content": answer}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        completion = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake", "choices": [choice]}
        self._send(200, {**completion, "usage": usage})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _thumbnail(data: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return list(image.convert("L").resize((8, 8)).tobytes())


def _nearest(thumbnails: dict[str, list[int]], data: bytes) -> str:
    seen = _thumbnail(data)
    return min(thumbnails, key=lambda i: sum((a - b) ** 2 for a, b in zip(thumbnails[i], seen, strict=True)))


def test_failed_api_requests_are_counted_not_scored(real_dataset, eight_images, tmp_path):
    """Image 0: HTTP 400 on every try → lmms-eval's failure text; 1: content null; 2: "" — all failed (an
    API backend answered nothing); the other five answer their class name: ImGT 5/8, failed 3/8."""
    ids = sorted(read_labels(real_dataset).images)
    truth = read_labels(real_dataset)
    thumbnails = {i: _thumbnail((eight_images / f"{i}.JPEG").read_bytes()) for i in ids}
    script = {i: NAMES[truth[i].imgt] for i in ids} | {ids[0]: 400, ids[1]: None, ids[2]: ""}
    server = _FakeChatServer(thumbnails, script)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model_args = (
            f"model=fake,base_url=http://127.0.0.1:{server.server_address[1]}/v1,api_key=x,"
            "max_retries=2,retry_backoff_s=0,num_concurrent=1,httpx_trust_env=False"
        )
        runs = run_lmms_eval(
            ["--model", "openai", "--model_args", model_args, "--tasks", "imagenet_real_cw"],
            tmp_path / "out",
            {"IMAGENET_REAL_DATA": str(real_dataset), "NO_PROXY": "127.0.0.1"},
        )
    finally:
        server.shutdown()
    run = runs["imagenet_real_cw"]
    assert run["records"][ids[0]]["answer"].startswith("[LMMS_EVAL_REQUEST_FAILED after 2 retries]")
    assert [run["records"][i]["outcome"] for i in ids] == ["failed"] * 3 + ["parsed"] * 5
    assert (metric(run, "imgt_A"), metric(run, "failed"), metric(run, "oop_A")) == (5 / 8, 3 / 8, 0.0)
    assert run["report"]["failed_on_empty_response"] is True
    assert "3 of 8 requests failed" in run["log"]
    assert len(server.requests) == 2 + 7  # image 0 twice (lmms-eval's retries), the others once
    assert server.requests[0]["messages"][-1]["content"][0]["text"].count("\n") == 1001  # the class list first
    from tests.test_rescore_submit import cli

    refusal = cli("submit", run["results_path"], "--out", tmp_path / "s", check=False)
    assert refusal.returncode == 2 and "3 of 8 requests failed" in refusal.stderr
    cli("submit", run["results_path"], "--out", tmp_path / "s", "--allow-failed")
    [submission] = (tmp_path / "s").glob("*.json")
    assert json.loads(submission.read_text())["outcomes"]["failed"] == 3


# --- 4, 6, 9. wrong, bad or missing data: refused before the model loads, exit 2, one line --------------


def test_regt_tasks_refuse_a_dataset_of_other_labels(real_dataset, tmp_path):
    line = refused(["--tasks", "imagenet_regt_cw"], tmp_path, {"IMAGENET_REGT_DATA": str(real_dataset)})
    assert "holds the 'real' labels, but task 'imagenet_regt_cw' scores against 'regt'" in line
    assert line.endswith("run the imagenet_real_* tasks")


def _shard(folder, rows, drop=()):
    """A hand-made dataset folder whose one shard has the given label rows (no images: refused before)."""
    table = {
        "image_id": [r[0] for r in rows],
        "imgt": [r[1] for r in rows],
        "labels": [r[2] for r in rows],
        "not_sure": [False] * len(rows),
        "label_set": ["real"] * len(rows),
    }
    (folder / "data").mkdir(parents=True)
    path = folder / "data" / "validation-00000-of-00001.parquet"
    pq.write_table(pa.table({k: v for k, v in table.items() if k not in drop}), path)
    return path


@pytest.mark.parametrize(
    ("rows", "drop", "message"),
    [
        (
            [("ILSVRC2012_val_00000001", 65, [65]), ("ILSVRC2012_val_00000001", 65, [65])],
            (),
            "row 2: duplicate image id (got 'ILSVRC2012_val_00000001')",
        ),
        ([("ILSVRC2012_val_00000001", -1, [65])], (), "row 1: 'imgt': class index outside 0..999 (got -1)"),
        ([("ILSVRC2012_val_00000001", 65, [1000])], (), "row 1: 'labels': class index outside 0..999 (got 1000)"),
        ([("ILSVRC2012_val_00000001", 65, [65])], ("labels",), "missing column 'labels'"),
        ([("ILSVRC2012_val_00000001", 64, [65])], (), "row 1: 'imgt' of ILSVRC2012_val_00000001 disagrees"),
    ],
)
def test_bad_dataset_rows_are_refused_naming_file_row_and_column(tmp_path, rows, drop, message):
    shard = _shard(tmp_path / "dataset", rows, drop)
    line = refused(["--tasks", "imagenet_real_cw"], tmp_path, {"IMAGENET_REAL_DATA": str(tmp_path / "dataset")})
    assert str(shard) in line and message in line, line


@pytest.mark.parametrize(
    ("task", "env", "message"),
    [
        ("imagenet_real_cw", {}, "IMAGENET_REAL_DATA: task 'imagenet_real_cw' needs $IMAGENET_REGT_IMAGES (your"),
        ("imagenet_regt_cw", {"IMAGENET_REGT_IMAGES": "/x"}, "needs $IMAGENET_REGT_LABELS (the labels: a labels"),
        ("imagenet_real_cw", {"IMAGENET_REGT_IMAGES": "/no/such"}, "/no/such: not a folder of validation images"),
        ("imagenet_real_cw", {"IMAGENET_REAL_DATA": "/no/such/folder"}, "names a folder that does not exist"),
        ("imagenet_real_mc_imgt_conf", None, "IMAGENET_REGT_CONFUSIONS: confusion-based option sets need"),
        ("imagenet_real_mc_imgt_conf", "missing", "/no/such/confusions.json: no such file"),
    ],
)
def test_configuration_errors_come_before_the_model_loads(real_dataset, tmp_path, monkeypatch, task, env, message):
    for variable in ("IMAGENET_REAL_DATA", "IMAGENET_REGT_CONFUSIONS", "IMAGENET_REGT_IMAGES", "IMAGENET_REGT_LABELS"):
        monkeypatch.delenv(variable, raising=False)
    if env is None:
        env = {"IMAGENET_REAL_DATA": str(real_dataset)}
    elif env == "missing":
        env = {"IMAGENET_REAL_DATA": str(real_dataset), "IMAGENET_REGT_CONFUSIONS": "/no/such/confusions.json"}
    assert message in refused(["--tasks", task], tmp_path, env)


def test_a_task_setting_with_a_typo_is_refused(real_dataset, tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    config = {
        "include": str(tasks_dir() / "imagenet_real_cw.yaml"),
        "task": "my_cw",
        "metadata": {"protocol": "cw", "nmaes": "openai"},
    }
    (folder / "my_cw.yaml").write_text(yaml.safe_dump(config))
    args = ["--include_path", str(folder), "--tasks", "my_cw"]
    line = refused(args, tmp_path, {"IMAGENET_REAL_DATA": str(real_dataset)})
    assert "task my_cw: unknown protocol setting 'nmaes'" in line


# --- 5. one hash for one label set -----------------------------------------------------------------------


def test_score_the_dataset_card_runs_and_validate_use_one_hash(scripted_runs, real_dataset, tmp_path):
    from tests.test_rescore_submit import cli

    real = load_ground_truth("real").sha256
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"image_id": "ILSVRC2012_val_00000001", "prediction": 65}\n')
    scored = json.loads(cli("score", predictions, "--gt", "real", "--format", "json").stdout)
    assert scored["ground_truth_sha256"] == real
    assert real in (real_dataset / "README.md").read_text()  # the 8-image dataset names the whole set's hash
    assert scripted_runs["imagenet_real_cw"]["report"]["labels"]["sha256"] == real


# --- 8. a --limit run is a partial run, and says so --------------------------------------------------------


def test_a_limited_run_records_its_coverage_and_is_never_ranked(real_dataset, scripted_answers, tmp_path):
    from tests.test_rescore_submit import cli

    runs = run_lmms_eval(
        ["--model", "imagenet_regt_replay", "--model_args", f"answers={scripted_answers}"]
        + ["--tasks", "imagenet_real_cw", "--limit", "3"],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    report = runs["imagenet_real_cw"]["report"]
    assert report["images"]["limit"] == 3 and report["images"]["scored"] == 3 and report["coverage"] == 3 / 50_000
    cli("submit", runs["imagenet_real_cw"]["results_path"], "--out", tmp_path / "s")
    [submission] = (tmp_path / "s").glob("*.json")
    assert "warning: run with --limit 3: 3 images, not a full evaluation" in cli("validate", submission).stdout
    cli("leaderboard", submission, "--out", tmp_path / "board")
    board = (tmp_path / "board" / "leaderboard.md").read_text()
    # partial: no rank; 3 < 30 images: italic; Wilson of 2 of 3 by hand (z = 1.96): 0.5731 ± 0.3654
    row = "| **imagenet\\_regt\\_replay** ‡ | imagenet_real_cw | real | 3 | 0.0% | – (partial) | "
    assert row + "_66.67 [20.8, 93.9] n=3_ | _66.67 [20.8, 93.9] n=3_ |" in board


# --- 3, 10, 11. reasoning, malformed answers, the paper's CW rule ---------------------------------------


def test_malformed_answers_never_abort_the_run_and_the_paper_rule_is_the_default(real_dataset, tmp_path):
    """One call, five tasks: CW, CW+ and OW on answers no model should give, CW with class numbers, and a
    lenient CW copy. Every task writes all 8 records; each answer ends in the outcome worked out by hand."""
    ids = sorted(read_labels(real_dataset).images)
    answers = [
        "kayak\ud800",  # a lone surrogate: repaired to U+FFFD, then out of prompt
        "Chow Chow\x00\x07",  # control characters: out of prompt, no crash
        "tiger beetle " * 80_000,  # about 1 MB
        "²",  # not a class number, not a name
        "Answer: lifeboat",  # right only under the lenient rule
        "<analysis>long</analysis>railroad car",  # lmms-eval's other reasoning tag, removed
        "kayak</think>",  # reasoning the template opened, no answer after it
        "<think>Let me think. It could be a giant panda",  # truncated: wrong even though it names the class
    ]
    path = write_answers(tmp_path / "answers.jsonl", dict(zip(ids, answers, strict=True)))
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name, settings in (("my_cw_ids", {"label_format": "ids"}), ("my_cw_lenient", {"lenient": True})):
        config = {"include": str(tasks_dir() / "imagenet_real_cw.yaml"), "task": name}
        config["metadata"] = {"version": 0.2, "protocol": "cw", **settings}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
    runs = run_lmms_eval(
        ["--model", "imagenet_regt_replay", "--model_args", f"answers={path}", "--include_path", str(folder)]
        + ["--tasks", "imagenet_real_cw,imagenet_real_cwplus,imagenet_real_ow,my_cw_ids,my_cw_lenient"],
        tmp_path / "out",
        {"IMAGENET_REAL_DATA": str(real_dataset)},
    )
    for run in runs.values():
        assert len(run["samples"]) == 8 and len(run["records"]) == 8
    cw = runs["imagenet_real_cw"]
    assert [cw["records"][i]["outcome"] for i in ids] == ["parsed"] * 6 + ["unanswered", "truncated"]
    assert [cw["records"][i]["out_of_prompt"] for i in ids] == [True] * 5 + [False, False, False]
    assert cw["records"][ids[0]]["cleaned"] == "kayak\ufffd"
    assert cw["records"][ids[2]]["answer_chars"] == len(answers[2].strip())  # lmms-eval strips answers first
    assert len(cw["records"][ids[2]]["answer"]) == 1000 and len(cw["records"][ids[2]]["cleaned"]) == 2000
    assert metric(cw, "imgt_A") == 1 / 8  # only the railroad car
    lenient = runs["my_cw_lenient"]
    assert metric(lenient, "imgt_A") == 2 / 8 and lenient["records"][ids[4]]["classes"] == [625]
    assert lenient["report"]["settings"]["lenient"] is True
    assert metric(runs["my_cw_ids"], "imgt_A") == 0.0 and runs["my_cw_ids"]["records"][ids[3]]["out_of_prompt"]
    ow = runs["imagenet_real_ow"]
    assert [ow["records"][i]["outcome"] for i in ids] == ["mapped"] * 6 + ["unanswered", "truncated"]
    assert ow["records"][ids[7]]["classes"] == [] and metric(ow, "truncated") == 1 / 8
    assert "answers held invalid UTF-16 surrogates, replaced by U+FFFD" in cw["log"]
