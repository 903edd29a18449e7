"""Guards for the one place that adapts lmms-eval internals: fails loudly if lmms-eval changes them."""

import inspect
import subprocess
import sys

import pytest
import yaml

from lmms_eval_imagenet_regt import InputError
from lmms_eval_imagenet_regt.lmms.plugin import resolve_data_source, task_labels, tasks_dir
from tests.lmms_run import OFFLINE


def test_lmms_eval_still_has_the_methods_we_wrap():
    from lmms_eval import evaluator
    from lmms_eval.loggers.evaluation_tracker import EvaluationTracker
    from lmms_eval.tasks import TaskManager

    init = inspect.signature(TaskManager.initialize_tasks).parameters
    assert list(init)[:3] == ["self", "include_path", "include_defaults"], "TaskManager.initialize_tasks changed"
    assert list(inspect.signature(TaskManager._get_config).parameters) == ["self", "name"], "_get_config changed"
    assert list(inspect.signature(TaskManager.match_tasks).parameters) == ["self", "task_list"], "match_tasks changed"
    save = list(inspect.signature(EvaluationTracker.save_results_aggregated).parameters)
    assert save == ["self", "results", "samples", "datetime_str"], "save_results_aggregated changed"
    assert "cli_args" in inspect.signature(evaluator.simple_evaluate).parameters, "simple_evaluate changed"


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


def test_task_files_are_thin_and_state_their_protocol():
    from lmms_eval.utils import load_yaml_config

    total = sum(len(path.read_text().splitlines()) for path in tasks_dir().iterdir() if "yaml" in path.name)
    assert total < 200
    for path in tasks_dir().glob("imagenet_*_*.yaml"):
        config = load_yaml_config(str(path), mode="simple")
        family = path.name.split("_")[1]
        assert config["dataset_path"] == f"IMAGENET_{family.upper()}_DATA", path.name
        assert config["metadata"]["protocol"] in path.stem, path.name
        assert [m["metric"] for m in config["metric_list"]][:3] == ["imgt_A", f"{family}_A", "im_and_re_A"]


def test_data_source_placeholder(real_dataset, tmp_path):
    resolved = resolve_data_source(str(real_dataset))
    assert resolved["dataset_path"] == "parquet"
    assert [p.split("/")[-1] for p in resolved["dataset_kwargs"]["data_files"]["validation"]] == [
        "validation-00000-of-00001.parquet"
    ]
    assert resolve_data_source("someone/imagenet-regt-joined") == {"dataset_path": "someone/imagenet-regt-joined"}
    with pytest.raises(InputError, match="without data/validation-"):
        task_labels(str(tmp_path), "IMAGENET_REGT_DATA")
    with pytest.raises(InputError, match=r"IMAGENET_REGT_DATA: names a folder that does not exist"):
        task_labels(str(tmp_path / "nowhere"), "IMAGENET_REGT_DATA")
    assert task_labels(str(real_dataset), "IMAGENET_REAL_DATA").label_set == "real"


def test_per_model_prompt_overrides_reach_the_prompt(real_dataset, tmp_path):
    """A model listed under lmms_eval_specific_kwargs gets its own pre/post prompt; the protocol settings
    (in metadata) stay the task's, and the prompt hash records the difference."""
    import lmms_eval.models  # noqa: F401  (loads our entry point)
    from lmms_eval.tasks import TaskManager

    folder = tmp_path / "tasks"
    folder.mkdir()
    config = {
        "include": str(tasks_dir() / "imagenet_real_ow.yaml"),
        "task": "my_real_ow",
        "lmms_eval_specific_kwargs": {"default": {"post_prompt": ""}, "qwen3_vl": {"post_prompt": " One word."}},
    }
    (folder / "my_real_ow.yaml").write_text(yaml.safe_dump(config))
    import os

    os.environ["IMAGENET_REAL_DATA"] = str(real_dataset)
    try:
        hashes = {}
        for model in ("qwen3_vl", "imagenet_regt_replay"):
            manager = TaskManager(include_path=str(folder), model_name=model)
            [task] = manager.load_task_or_group(["my_real_ow"]).values()
            text = task.doc_to_text(task.test_docs()[0])
            assert text.endswith(" One word.") == (model == "qwen3_vl"), (model, text)
            hashes[model] = task.config.metadata["imagenet_regt"]["prompt_hash"]
        assert hashes["qwen3_vl"] != hashes["imagenet_regt_replay"]
    finally:
        del os.environ["IMAGENET_REAL_DATA"]
