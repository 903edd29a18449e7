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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import NoReturn

from loguru import logger
from tqdm import tqdm

from ..errors import InputError
from ..files import atomic_path
from ..images import IMAGES_ENV, ImageSource, load, open_images
from ..labels.ground_truth import HUB_REPO_ID, GroundTruth, load_ground_truth, read_regt_parquet
from ..protocol.mapping import cache_dir
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

    Raises InputError for anything the run could not do right: missing or wrong labels or images, bad
    settings, an unknown name set or encoder, a missing confusion file.
    """
    from .tasks import API_MODELS, CLASSIFIER_MODELS, TASKS, TaskSpec

    family = DATA_SOURCES[config["dataset_path"]]
    metadata = config.get("metadata") or {}
    data = task_data(name, family, config["dataset_path"], metadata)
    if data.labels.label_set != family:
        raise InputError(
            data.labels_location,
            f"holds the {data.labels.label_set!r} labels, but task {name!r} scores against {family!r}"
            + (
                f": run the imagenet_{data.labels.label_set}_* tasks"
                if data.labels.label_set in DATA_SOURCES.values()
                else ""
            ),
        )
    settings = ProtocolConfig.from_metadata(metadata, f"task {name}", other_keys=DATA_KEYS)
    kwargs = config.get("lmms_eval_specific_kwargs") or {}
    prompts = kwargs.get(model_name) if model_name in kwargs else kwargs.get("default", {})
    spec = TaskSpec(
        name,
        settings,
        data.labels,
        data.labels_location,
        images=data.images,
        image_source=data.recorded,
        model=model_name,
        empty_is_failure=model_name in API_MODELS,
        answers_are_classes=model_name in CLASSIFIER_MODELS,
        pre_prompt=(prompts or {}).get("pre_prompt", ""),
        post_prompt=(prompts or {}).get("post_prompt", ""),
    )
    if name not in TASKS or TASKS[name].identity != spec.identity:  # else keep its options and mappings
        spec.check()
        TASKS[name] = spec
        for note in data.notes:
            logger.warning(note)
    prepared = bind_hooks({**config, **data.dataset}, name)
    prepared["metadata"] = {**metadata, "imagenet_regt": TASKS[name].recorded()}
    return prepared


#: Task `metadata` keys about the data rather than the protocol (each also an environment variable).
DATA_KEYS = ("labels", "images", "skip_bad_images")
#: Where a family's labels are found when no joined dataset is given; ReaL ships with timm.
LABELS_ENV = {"regt": "IMAGENET_REGT_LABELS", "real": "IMAGENET_REAL_LABELS"}
DEFAULT_LABELS = {"real": "real"}
SKIP_ENV = "IMAGENET_REGT_SKIP_BAD_IMAGES"


@dataclass(frozen=True)
class TaskData:
    """Where a task's labels and images come from, and what lmms-eval must load as its documents."""

    labels: GroundTruth
    labels_location: str
    #: the images, read lazily by id; None when a joined dataset carries them in its rows
    images: ImageSource | None
    #: `dataset_path` and `dataset_kwargs` for lmms-eval
    dataset: dict
    #: what the results record about the images
    recorded: dict
    #: what the user should read before the run (fewer images than labels, images skipped)
    notes: list[str] = field(default_factory=list)


def task_data(name: str, family: str, placeholder: str, metadata: dict) -> TaskData:
    """The task's labels and images: a joined dataset (`$IMAGENET_<SET>_DATA`), or labels from where they are
    published (`$IMAGENET_<SET>_LABELS`, timm's copy for ReaL) and the user's images (`$IMAGENET_REGT_IMAGES`)
    joined by image id. Task metadata (`labels:`, `images:`, `skip_bad_images:`) overrides the environment."""
    joined = os.environ.get(placeholder, "").strip()
    if joined and not {"labels", "images"} & set(metadata):
        labels = task_labels(joined, placeholder)
        return TaskData(labels, joined, None, resolve_data_source(joined), {"location": joined, "found": len(labels)})
    labels_location = str(
        metadata.get("labels") or os.environ.get(LABELS_ENV[family], "") or DEFAULT_LABELS.get(family, "")
    )
    images_location = str(metadata.get("images") or os.environ.get(IMAGES_ENV, ""))
    if not labels_location or not images_location:
        needed = []
        if not images_location:
            needed.append(
                f"${IMAGES_ENV} (your ImageNet validation images: a folder of ILSVRC2012_val_*.JPEG, class "
                "subfolders welcome; a local dataset folder; or a Hub dataset id such as ILSVRC/imagenet-1k)"
            )
        if not labels_location:
            needed.append(f"${LABELS_ENV[family]} (the labels: a labels dataset folder, a label file or a Hub id)")
        raise InputError(
            placeholder,
            f"task {name!r} needs {' and '.join(needed)}; "
            f"or set ${placeholder} to a dataset written by `imagenet-regt build-dataset`",
        )
    labels = load_labels(labels_location)
    images = index_images(images_location)
    present = sorted(set(labels.images) & images.ids())
    skip = metadata.get("skip_bad_images", os.environ.get(SKIP_ENV, "").lower() in ("1", "true", "yes"))
    skipped = _unreadable(images, present) if skip else []
    present = [image_id for image_id in present if image_id not in set(skipped)]
    if not present:
        raise InputError(images_location, f"holds none of the {len(labels)} images labelled in {labels_location}")
    notes = [f"{name}: skipped {len(skipped)} unreadable images: {', '.join(skipped)}"] if skipped else []
    if len(present) < labels.set_size:
        notes.append(
            f"{name}: {len(present)} of the {labels.set_size} labelled images are in {images_location}: evaluating "
            f"those (coverage {100 * len(present) / labels.set_size:.1f}%, recorded in the results)"
        )
    docs = write_docs(labels.subset(present))
    dataset = {"dataset_path": "parquet", "dataset_kwargs": {"data_files": {"validation": [str(docs)]}}}
    recorded = {"location": images_location, "found": len(present), "skipped": skipped}
    return TaskData(labels, labels_location, images, dataset, recorded, notes)


@functools.cache
def load_labels(location: str) -> GroundTruth:
    """Labels as `--gt` takes them (a name, file, folder or Hub id), read once per process."""
    return load_ground_truth(location)


@functools.cache
def index_images(location: str) -> ImageSource:
    """The user's images, indexed once per process (every task of a run reads the same source)."""
    return open_images(location)


def _unreadable(images: ImageSource, ids: list[str]) -> list[str]:
    """The images that cannot be read or decoded (checked before the run when the user opts to skip them)."""
    bad = []
    for image_id in tqdm(ids, desc="Checking images", disable=len(ids) < 2000):
        try:
            load(images, image_id)
        except InputError:
            bad.append(image_id)
    return bad


def write_docs(labels: GroundTruth) -> Path:
    """The task's documents (image ids and labels, no pixels) as a parquet file named by its content."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = labels.to_records()
    table = pa.Table.from_pylist(
        [{key: row[key] for key in ("image_id", "imgt", "labels", "not_sure")} for row in rows],
        schema=pa.schema(
            [
                ("image_id", pa.string()),
                ("imgt", pa.int64()),
                ("labels", pa.list_(pa.int64())),
                ("not_sure", pa.bool_()),
            ]
        ),
    )
    path = cache_dir() / "docs" / f"validation-{labels.sha256[:24]}.parquet"
    if not path.is_file():
        with atomic_path(path) as temporary:
            pq.write_table(table, temporary)
    return path


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


def resolve_data_source(location: str) -> dict:
    """`dataset_path` and `dataset_kwargs` for a joined dataset: a folder or a Hub repo id."""
    folder = Path(location).expanduser()
    if not folder.is_dir():
        return {"dataset_path": location}  # a Hub repo id
    shards = sorted(str(path.resolve()) for path in (folder / "data").glob("validation-*.parquet"))
    # The parquet builder with explicit files: `datasets` caches a folder by its name and file patterns
    # only, so two builds in folders of the same name would otherwise share one (stale) cache entry.
    return {"dataset_path": "parquet", "dataset_kwargs": {"data_files": {"validation": shards}}}


def bind_hooks(config: dict, name: str) -> dict:
    """Our hooks bound to the task name, so each finds its task's settings and labels."""
    from . import hooks

    bound = dict(config)
    for key in ("doc_to_visual", "doc_to_text", "doc_to_messages", "process_results"):
        if getattr(bound.get(key), "__module__", None) == hooks.__name__:
            bound[key] = functools.partial(bound[key], task=name)
    bound["process_docs"] = functools.partial(hooks.process_docs, task=name)
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
        batch = config.get("batch_size")  # with the recorded image order: what each batch held
        report["batch_size"] = int(batch) if str(batch).isdigit() else batch
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
