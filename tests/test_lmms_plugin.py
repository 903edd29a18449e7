"""Guards for the one place that adapts lmms-eval internals: fails loudly if lmms-eval changes them."""

import inspect
import subprocess
import sys

import pytest

from lmms_eval_imagenet_regt import InputError
from lmms_eval_imagenet_regt.lmms.plugin import resolve_data_source, tasks_dir
from lmms_eval_imagenet_regt.records import METRICS
from tests.lmms_run import OFFLINE


def test_lmms_eval_still_has_the_methods_we_wrap():
    from lmms_eval.tasks import TaskManager

    init = inspect.signature(TaskManager.initialize_tasks).parameters
    assert list(init)[:3] == ["self", "include_path", "include_defaults"], "TaskManager.initialize_tasks changed"
    assert list(inspect.signature(TaskManager._get_config).parameters) == ["self", "name"], "_get_config changed"


def test_importing_the_model_registry_makes_our_tasks_visible():
    import lmms_eval.models  # noqa: F401  (loads our entry point)
    from lmms_eval.tasks import TaskManager

    manager = TaskManager()
    for name in ("imagenet_regt_cwplus", "imagenet_real_ow", "imagenet_regt_mc_imgt_regt_conf", "imagenet_regt"):
        assert name in manager.all_tasks
    assert "imagenet_regt_replay" in lmms_eval.models.list_available_models()


def test_cli_task_list_shows_our_tasks_with_no_flag():
    listing = subprocess.run(
        [sys.executable, "-m", "lmms_eval", "--tasks", "list"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **OFFLINE},
    )
    assert "imagenet_regt_cwplus" in listing.stdout + listing.stderr


def test_every_task_yaml_lists_exactly_its_protocol_metrics():
    import yaml

    for path in tasks_dir().glob("imagenet_*_*.yaml"):
        text = path.read_text()
        config = yaml.safe_load(text.replace("!function ", ""))
        protocol = config["lmms_eval_specific_kwargs"]["default"]["protocol"]
        assert [m["metric"] for m in config["metric_list"]] == list(METRICS[protocol]), path.name
        assert config["filter_list"][0]["filter"][0]["protocol"] == protocol, path.name


def test_data_source_placeholder(monkeypatch, real_dataset, tmp_path):
    monkeypatch.delenv("IMAGENET_REGT_DATA", raising=False)
    with pytest.raises(InputError, match=r"IMAGENET_REGT_DATA: task 'imagenet_regt_cw' reads .* build-dataset"):
        resolve_data_source({"task": "imagenet_regt_cw", "dataset_path": "IMAGENET_REGT_DATA"})
    monkeypatch.setenv("IMAGENET_REGT_DATA", str(real_dataset))
    resolved = resolve_data_source({"task": "t", "dataset_path": "IMAGENET_REGT_DATA"})
    assert resolved["dataset_path"] == "parquet"
    assert [p.split("/")[-1] for p in resolved["dataset_kwargs"]["data_files"]["validation"]] == [
        "validation-00000-of-00001.parquet"
    ]
    monkeypatch.setenv("IMAGENET_REGT_DATA", "someone/imagenet-regt-joined")
    assert resolve_data_source({"dataset_path": "IMAGENET_REGT_DATA"})["dataset_path"] == "someone/imagenet-regt-joined"
    monkeypatch.setenv("IMAGENET_REGT_DATA", str(tmp_path))
    with pytest.raises(InputError, match="without data/validation-"):
        resolve_data_source({"dataset_path": "IMAGENET_REGT_DATA"})
    assert resolve_data_source({"dataset_path": "lmms-lab/MME"}) == {"dataset_path": "lmms-lab/MME"}
