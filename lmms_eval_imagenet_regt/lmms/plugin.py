"""The one place where the plugin adapts lmms-eval 0.7.x: task discovery, task preparation, results.

lmms-eval 0.7.3 has an entry-point group for models (`lmms_eval.models`) but none for tasks, and
`LMMS_EVAL_PLUGINS` is read after the task index is built. Our model entry point is loaded whenever
`lmms_eval.models` is imported, which the CLI and `simple_evaluate` do before they build a `TaskManager`;
loading it wraps:

- `TaskManager.initialize_tasks`: also indexes this package's `tasks/` folder, so `--tasks
  imagenet_regt_cwplus` works with no flag (the fallback, `--include_path <that folder>`, prints with
  `imagenet-regt tasks-dir`);
- `TaskManager._get_config`: prepares each of our tasks (`prepare_task`): reads and validates its labels,
  settings, names, encoder and confusion file, resolves its data source, binds the hooks to the task name
  and records what the results must say about the task;
- `TaskManager.match_tasks`: does that preparation for the requested tasks right away, before lmms-eval
  loads the model, and ends the process with exit code 2 and one line on a configuration error (lmms-eval
  would report it minutes later, after the weights loaded, and exit 0);
- `EvaluationTracker.save_results_aggregated`: adds each task's full report (`imagenet_regt.<task>`) to the
  results file, after checking it against the headline metrics lmms-eval computed;
- `evaluator.simple_evaluate`: a CLI evaluation of our tasks that fails exits with code 1, not 0.

All are private or semi-private; `tests/test_lmms_plugin.py` fails loudly if lmms-eval changes them.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import NoReturn

from ..errors import InputError
from ..labels.ground_truth import HUB_REPO_ID, GroundTruth, read_regt_parquet
from ..protocol.settings import ProtocolConfig
from ..records import RECORD_KEY

#: Placeholders a task YAML may use as `dataset_path`, each replaced by its environment variable's value,
#: with the label set the tasks reading it must be given.
DATA_SOURCES = {"IMAGENET_REGT_DATA": "regt", "IMAGENET_REAL_DATA": "real"}
#: The filter ensemble of our tasks (so metric keys read `regt_A,none`).
FILTER_NAME = "none"
#: Per-image headline values each task returns besides its record; lmms-eval averages them.
HEADLINE = ("imgt_A", "{set}_A", "im_and_re_A", "oop_A", "unanswered", "truncated", "failed")
_MARK = "_imagenet_regt_wrapped"


def tasks_dir() -> Path:
    return Path(str(resources.files("lmms_eval_imagenet_regt.tasks")))


def is_our_task(config: dict) -> bool:
    return config.get("dataset_path") in DATA_SOURCES


# --- preparing a task ----------------------------------------------------------------------------------


def prepare_task(name: str, config: dict, model_name: str | None) -> dict:
    """Our task's config, ready for lmms-eval: spec registered, data source resolved, hooks bound.

    Raises InputError for anything the run could not do right: missing or wrong labels, bad settings,
    an unknown name set or encoder, a missing confusion file.
    """
    from .tasks import API_MODELS, TASKS, TaskSpec

    placeholder = config["dataset_path"]
    family = DATA_SOURCES[placeholder]
    location = os.environ.get(placeholder, "").strip()
    if not location:
        raise InputError(
            placeholder,
            f"task {name!r} reads its images and labels from ${placeholder}: set it to a folder written by "
            "`imagenet-regt build-dataset` or to the Hub repo id you pushed that dataset to",
        )
    labels = task_labels(location, placeholder)
    if labels.label_set != family:
        raise InputError(
            location,
            f"holds the {labels.label_set!r} labels, but task {name!r} scores against {family!r}: "
            + (
                f"run the imagenet_{labels.label_set}_* tasks with ${_placeholder_for(labels.label_set)}"
                if labels.label_set in DATA_SOURCES.values()
                else f"build a dataset from the {family} labels (imagenet-regt build-dataset --labels {family})"
            ),
        )
    settings = ProtocolConfig.from_metadata(config.get("metadata"), f"task {name}")
    kwargs = config.get("lmms_eval_specific_kwargs") or {}
    prompts = kwargs.get(model_name) if model_name in kwargs else kwargs.get("default", {})
    spec = TaskSpec(
        name,
        settings,
        labels,
        location,
        model=model_name,
        empty_is_failure=model_name in API_MODELS,
        pre_prompt=(prompts or {}).get("pre_prompt", ""),
        post_prompt=(prompts or {}).get("post_prompt", ""),
    )
    if name not in TASKS or TASKS[name].identity != spec.identity:  # else keep its options and mappings
        spec.check()
        TASKS[name] = spec
    prepared = bind_hooks(resolve_data_source(config, location), name)
    prepared["metadata"] = {**(config.get("metadata") or {}), "imagenet_regt": TASKS[name].recorded()}
    return prepared


def _placeholder_for(label_set: str) -> str:
    return next(key for key, value in DATA_SOURCES.items() if value == label_set)


@functools.cache
def task_labels(location: str, placeholder: str) -> GroundTruth:
    """The labels of a task's dataset (its label columns, validated row by row), read once per process."""
    folder = Path(location).expanduser()
    if not folder.exists():
        if HUB_REPO_ID.fullmatch(location):
            return _hub_labels(location, placeholder)
        raise InputError(placeholder, "names a folder that does not exist", value=location)
    shards = sorted((folder / "data").glob("validation-*.parquet"))
    if not shards:
        raise InputError(folder, f"${placeholder} names a folder without data/validation-*.parquet shards")
    import pyarrow.parquet as pq

    for shard in shards:
        names = pq.read_schema(shard).names
        for column in ("image_id", "imgt", "labels", "label_set"):
            if column not in names:
                raise InputError(
                    shard,
                    f"missing column {column!r}: not a dataset written by this version of "
                    "`imagenet-regt build-dataset` (rebuild it)",
                )
    return read_regt_parquet(folder / "data")


def _hub_labels(repo_id: str, placeholder: str) -> GroundTruth:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, repo_type="dataset", allow_patterns=["labels/*.parquet"])
    except Exception as error:  # offline, gated, unknown: one line, whatever the Hub client raised
        raise InputError(placeholder, f"cannot fetch the labels of Hub dataset {repo_id}: {error}") from None
    return read_regt_parquet(Path(folder) / "labels")


def resolve_data_source(config: dict, location: str) -> dict:
    """The config with its dataset placeholder replaced by the data location."""
    folder = Path(location).expanduser()
    if not folder.is_dir():
        return {**config, "dataset_path": location}  # a Hub repo id
    shards = sorted(str(path.resolve()) for path in (folder / "data").glob("validation-*.parquet"))
    # The parquet builder with explicit files: `datasets` caches a folder by its name and file patterns
    # only, so two builds in folders of the same name would otherwise share one (stale) cache entry.
    kwargs = {**(config.get("dataset_kwargs") or {}), "data_files": {"validation": shards}}
    return {**config, "dataset_path": "parquet", "dataset_kwargs": kwargs}


def bind_hooks(config: dict, name: str) -> dict:
    """Our hooks bound to the task name, so each finds its task's settings and labels."""
    from . import hooks

    bound = dict(config)
    for key in ("doc_to_text", "doc_to_messages", "process_results"):
        if getattr(bound.get(key), "__module__", None) == hooks.__name__:
            bound[key] = functools.partial(bound[key], task=name)
    bound["filter_list"] = [
        {
            **ensemble,
            "filter": [
                {**step, "task": name} if step.get("function") is hooks.AnswerFilter else step
                for step in ensemble.get("filter", [])
            ],
        }
        for ensemble in bound.get("filter_list") or []
    ]
    return bound


# --- the run's results ---------------------------------------------------------------------------------


def attach_reports(results: dict) -> None:
    """Add each of our tasks' reports to the results, after checking it against lmms-eval's metrics."""
    from .hooks import REPORTS

    config = results.get("config") or {}
    for task, values in (results.get("results") or {}).items():
        report = REPORTS.get(task)
        if report is None:
            continue
        limit = config.get("limit")  # lmms-eval's --limit: a count, or a fraction of the data when below 1
        report["images"]["limit"] = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        report["images"]["dataset_rows"] = (results.get("n-samples") or {}).get(task, {}).get("original")
        report["coverage"] = report["images"]["scored"] / report["labels"]["images"]
        _check_headline(task, values, report)
        results.setdefault("imagenet_regt", {})[task] = report


def _check_headline(task: str, values: dict, report: dict) -> None:
    """lmms-eval's averages of the per-image values must equal the report's: else something dropped or
    counted an image twice, and the run must not pass as valid."""
    for key in (name.format(set=report["labels"]["set"]) for name in HEADLINE):
        ours, theirs = report["metrics"].get(key), values.get(f"{key},{FILTER_NAME}")
        if ours is None and theirs is None:  # OW has no out-of-prompt rate
            continue
        if ours is None or theirs is None or not math.isclose(ours, theirs, rel_tol=0, abs_tol=1e-9):
            raise InputError(task, f"lmms-eval's {key} ({theirs}) differs from the per-image records' ({ours})")
    if values.get(f"{RECORD_KEY},{FILTER_NAME}") != report["images"]["scored"]:
        raise InputError(task, "lmms-eval's image count differs from the per-image records'")


# --- wrapping lmms-eval -------------------------------------------------------------------------------


def fail(error: InputError, code: int = 2) -> NoReturn:
    print(f"imagenet-regt: error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def register() -> None:
    """Wrap lmms-eval's task manager (idempotent). Runs while `lmms_eval.models` initialises, when
    `lmms_eval.evaluator` may still be importing: the run's wrappers wait for the first `match_tasks`."""
    from lmms_eval.tasks import TaskManager

    if getattr(TaskManager.initialize_tasks, _MARK, False):
        return
    index_tasks, get_config, match = TaskManager.initialize_tasks, TaskManager._get_config, TaskManager.match_tasks

    def initialize_tasks(self, include_path=None, include_defaults=True):
        paths = [include_path] if isinstance(include_path, str) else list(include_path or [])
        if str(tasks_dir()) not in paths:
            paths.append(str(tasks_dir()))
        return index_tasks(self, include_path=paths, include_defaults=include_defaults)

    def _get_config(self, name):
        config = get_config(self, name)
        if not is_our_task(config):
            return config
        try:
            return prepare_task(name, config, self.model_name)
        except InputError as error:
            fail(error)

    def match_tasks(self, task_list):
        names = match(self, task_list)
        for name in names:
            for task in _leaf_tasks(self, name):
                self._get_config(task)
        _wrap_run()
        return names

    _mark(initialize_tasks, _get_config, match_tasks)
    TaskManager.initialize_tasks = initialize_tasks
    TaskManager._get_config = _get_config
    TaskManager.match_tasks = match_tasks


def _wrap_run() -> None:
    """Wrap the results writer and the CLI's evaluation entry (idempotent)."""
    from lmms_eval import evaluator
    from lmms_eval.loggers.evaluation_tracker import EvaluationTracker

    if getattr(evaluator.simple_evaluate, _MARK, False):
        return
    save, evaluate = EvaluationTracker.save_results_aggregated, evaluator.simple_evaluate

    def save_results_aggregated(self, results, samples, datetime_str):
        try:
            attach_reports(results)
        except InputError as error:
            fail(error, code=1)
        return save(self, results=results, samples=samples, datetime_str=datetime_str)

    def simple_evaluate(*args, **kwargs):
        from .tasks import TASKS

        try:
            return evaluate(*args, **kwargs)
        except Exception as error:
            if kwargs.get("cli_args") is None or not TASKS:
                raise
            if isinstance(error, InputError):  # bad input (a model's answers file, ...): one line
                fail(error)
            traceback.print_exc()
            fail(InputError("lmms-eval", f"the evaluation failed: {error!r}"), code=1)

    _mark(save_results_aggregated, simple_evaluate)
    EvaluationTracker.save_results_aggregated = save_results_aggregated
    evaluator.simple_evaluate = simple_evaluate


def _mark(*wrappers) -> None:
    for wrapper in wrappers:
        setattr(wrapper, _MARK, True)


def _leaf_tasks(manager, name: str) -> list[str]:
    """The tasks a requested name stands for: itself, or a group's or tag's tasks, recursively."""
    kind = manager.task_index.get(name, {}).get("type")
    if kind == "task":
        return [name]
    if kind == "group":
        members = manager._get_config(name).get("task", [])
    elif kind == "tag":
        members = manager.task_index[name]["task"]
    else:
        return []
    return [leaf for member in members if isinstance(member, str) for leaf in _leaf_tasks(manager, member)]


def model_manifests() -> list:
    """Entry point of group `lmms_eval.models`: our model classes (and, as a side effect, our tasks).

    lmms-eval imports are local: importing this module must not import `lmms_eval.models`, whose
    initialisation calls this very function.
    """
    from lmms_eval.models.registry_v2 import ModelManifest

    register()
    models = "lmms_eval_imagenet_regt.models"
    return [
        ModelManifest(model_id="imagenet_regt_replay", simple_class_path=f"{models}.replay.ReplayAnswers"),
        ModelManifest(model_id="openclip_zeroshot", simple_class_path=f"{models}.openclip_zeroshot.OpenClipZeroShot"),
        ModelManifest(model_id="timm_classifier", simple_class_path=f"{models}.timm_classifier.TimmClassifier"),
        ModelManifest(model_id="paligemma2", simple_class_path=f"{models}.paligemma2.PaliGemma2"),
        ModelManifest(model_id="qwen3_vl_prefix", chat_class_path=f"{models}.qwen_prefix_reuse.Qwen3VLPrefixReuse"),
        ModelManifest(model_id="qwen2_5_vl_prefix", chat_class_path=f"{models}.qwen_prefix_reuse.Qwen2_5VLPrefixReuse"),
    ]
