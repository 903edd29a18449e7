"""The one place where the plugin adapts lmms-eval 0.7.x: task discovery, data source, model registration.

lmms-eval 0.7.3 has an entry-point group for models (`lmms_eval.models`) but none for tasks, and
`LMMS_EVAL_PLUGINS` is read after the task index is built. Our model entry point is loaded whenever
`lmms_eval.models` is imported, which the CLI and `simple_evaluate` do before they build a `TaskManager`;
loading it wraps two `TaskManager` methods:

- `initialize_tasks` also indexes this package's `tasks/` folder, so `--tasks imagenet_regt_cwplus` works
  with no flag (the fallback, `--include_path <that folder>`, prints with `imagenet-regt tasks-dir`);
- `_get_config` replaces a task's `dataset_path` placeholder (`IMAGENET_REGT_DATA`, `IMAGENET_REAL_DATA`)
  by that environment variable's value: a folder written by `imagenet-regt build-dataset` (read as its
  parquet shards) or a Hub repo id.

Both are private methods; `tests/test_lmms_plugin.py` fails loudly if lmms-eval changes them.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..errors import InputError

#: Placeholders a task YAML may use as `dataset_path`, each replaced by its environment variable.
DATA_SOURCES = ("IMAGENET_REGT_DATA", "IMAGENET_REAL_DATA")
_MARK = "_imagenet_regt_wrapped"


def tasks_dir() -> Path:
    return Path(str(resources.files("lmms_eval_imagenet_regt.tasks")))


def resolve_data_source(config: dict) -> dict:
    """A task config with its dataset placeholder replaced by the environment's data location."""
    placeholder = config.get("dataset_path")
    if placeholder not in DATA_SOURCES:
        return config
    location = os.environ.get(placeholder, "").strip()
    if not location:
        raise InputError(
            placeholder,
            f"task {config.get('task')!r} reads its images and labels from ${placeholder}: set it to a folder "
            "written by `imagenet-regt build-dataset` or to the Hub repo id you pushed that dataset to",
        )
    folder = Path(location).expanduser()
    if not folder.is_dir():
        return {**config, "dataset_path": location}  # a Hub repo id
    shards = sorted(str(path.resolve()) for path in (folder / "data").glob("validation-*.parquet"))
    if not shards:
        raise InputError(folder, f"${placeholder} names a folder without data/validation-*.parquet shards")
    # The parquet builder with explicit files: `datasets` caches a folder by its name and file patterns
    # only, so two builds in folders of the same name would otherwise share one (stale) cache entry.
    kwargs = {**(config.get("dataset_kwargs") or {}), "data_files": {"validation": shards}}
    return {**config, "dataset_path": "parquet", "dataset_kwargs": kwargs}


def register_tasks() -> None:
    """Make lmms-eval's TaskManager index our tasks and resolve their data source (idempotent)."""
    from lmms_eval.tasks import TaskManager

    if getattr(TaskManager.initialize_tasks, _MARK, False):
        return
    index_tasks, get_config = TaskManager.initialize_tasks, TaskManager._get_config

    def initialize_tasks(self, include_path=None, include_defaults=True):
        paths = [include_path] if isinstance(include_path, str) else list(include_path or [])
        if str(tasks_dir()) not in paths:
            paths.append(str(tasks_dir()))
        return index_tasks(self, include_path=paths, include_defaults=include_defaults)

    def _get_config(self, name):
        return resolve_data_source(get_config(self, name))

    setattr(initialize_tasks, _MARK, True)
    TaskManager.initialize_tasks = initialize_tasks
    TaskManager._get_config = _get_config


def model_manifests() -> list:
    """Entry point of group `lmms_eval.models`: our model classes (and, as a side effect, our tasks).

    lmms-eval imports are local: importing this module must not import `lmms_eval.models`, whose
    initialisation calls this very function.
    """
    from lmms_eval.models.registry_v2 import ModelManifest

    register_tasks()
    models = "lmms_eval_imagenet_regt.models"
    return [
        ModelManifest(model_id="imagenet_regt_replay", simple_class_path=f"{models}.replay.ReplayAnswers"),
        ModelManifest(model_id="openclip_zeroshot", simple_class_path=f"{models}.openclip_zeroshot.OpenClipZeroShot"),
        ModelManifest(model_id="timm_classifier", simple_class_path=f"{models}.timm_classifier.TimmClassifier"),
        ModelManifest(model_id="paligemma2", simple_class_path=f"{models}.paligemma2.PaliGemma2"),
        ModelManifest(model_id="qwen3_vl_prefix", chat_class_path=f"{models}.qwen_prefix_reuse.Qwen3VLPrefixReuse"),
        ModelManifest(model_id="qwen2_5_vl_prefix", chat_class_path=f"{models}.qwen_prefix_reuse.Qwen2_5VLPrefixReuse"),
    ]
