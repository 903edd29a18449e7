"""Prefix reuse on the tiny Qwen3-VL and Qwen2.5-VL: the same answers as a full prefill, for less work.

Model-level tests compare the scores of every generated token in float32 (a shift of the suffix's
positions by one moves them by ~1e-2, image-to-image differences are ~1e-3, reuse stays below 1e-6);
CLI tests compare lmms-eval's greedy answers of the plain model class with ours on 16 real images.
"""

from __future__ import annotations

import glob

import pytest
import torch
from loguru import logger
from PIL import Image

from lmms_eval_imagenet_regt.models.prefix_reuse import SharedPrefixGenerate
from lmms_eval_imagenet_regt.protocol.prompts import class_list_prompt, question_prompt
from lmms_eval_imagenet_regt.protocol.settings import ProtocolConfig
from tests.lmms_run import TWO_CPU_PROCESSES, run_lmms_eval
from tests.tiny_models import build_tiny_qwen2_5_vl, build_tiny_qwen3_vl

BUILDERS = {"qwen3_vl": build_tiny_qwen3_vl, "qwen2_5_vl": build_tiny_qwen2_5_vl}
PIXELS = {"max_pixels": 50176, "min_pixels": 3136}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def tiny_qwen(request, tmp_path_factory):
    """(lmms-eval model name, checkpoint folder) of a tiny random Qwen-VL."""
    return request.param, BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def _inputs(checkpoint, images: list[Image.Image], protocol: str):
    from transformers import AutoProcessor

    config = ProtocolConfig(protocol=protocol)
    head = [{"type": "text", "text": class_list_prompt(config)}] if protocol == "cw" else []
    messages = [
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": [*head, {"type": "image"}, {"type": "text", "text": question_prompt(config)}]},
        ]
        for _ in images
    ]
    processor = AutoProcessor.from_pretrained(checkpoint, **PIXELS)
    texts = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")


@pytest.fixture(scope="module")
def four_images(shared_data) -> list[Image.Image]:
    """Four real images cropped to different shapes, as ImageNet's originals have (the shared copies are
    all 227x227), so the rows differ in length and need padding."""
    paths = sorted(glob.glob(str(shared_data / "imagenet_val_1300" / "images" / "*")))[:4]
    boxes = [(0, 0, 227, 227), (0, 0, 227, 120), (0, 0, 100, 227), (20, 20, 180, 150)]
    return [Image.open(path).convert("RGB").crop(box) for path, box in zip(paths, boxes, strict=True)]


def _generate(model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        out = model.generate(
            **inputs, max_new_tokens=6, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    return out.sequences, torch.stack(out.scores)


def _model(checkpoint):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=torch.float32).eval()


def test_reuse_gives_the_scores_of_a_full_prefill(tiny_qwen, four_images):
    _, checkpoint = tiny_qwen
    model, inputs = _model(checkpoint), _inputs(checkpoint, four_images, "cw")
    assert (inputs["attention_mask"] == 0).any(), "the images should differ in token count, so rows are padded"
    plain_tokens, plain_scores = _generate(model, inputs)
    shared = SharedPrefixGenerate(model)
    tokens, scores = _generate(shared, inputs)
    assert shared.reused == 4
    assert torch.equal(tokens, plain_tokens)
    assert (scores - plain_scores).abs().max() < 1e-5
    # the comparison can fail: the images move the scores by far more than reuse does
    assert (plain_scores[:, 0] - plain_scores[:, 1]).abs().max() > 1e-4
    shared.release()
    assert shared._cache is None


def test_open_world_requests_fall_back_with_one_warning(tiny_qwen, four_images):
    _, checkpoint = tiny_qwen
    model, inputs = _model(checkpoint), _inputs(checkpoint, four_images, "ow")
    shared, warnings = SharedPrefixGenerate(model), []
    sink = logger.add(warnings.append, level="WARNING")
    try:
        tokens, _ = _generate(shared, inputs)
        _generate(shared, inputs)
    finally:
        logger.remove(sink)
    assert shared.reused == 0 and torch.equal(tokens, _generate(model, inputs)[0])
    assert len(warnings) == 1 and "min_prefix_tokens=128" in warnings[0]


def test_guard_rejects_positions_that_do_not_continue_the_prefix(tiny_qwen, four_images, monkeypatch):
    """Stands in for a transformers release whose generation code ignores the cache when placing tokens."""
    _, checkpoint = tiny_qwen
    model, inputs = _model(checkpoint), _inputs(checkpoint, four_images[:2], "cw")
    positions = model._prepare_position_ids_for_generation

    def ignoring_cache(ids, kwargs):
        return positions(ids, {key: value for key, value in kwargs.items() if key != "past_key_values"}) + (
            1 if "past_key_values" in kwargs else 0
        )

    monkeypatch.setattr(model, "_prepare_position_ids_for_generation", ignoring_cache)
    with pytest.raises(RuntimeError, match="row 0's rotary positions differ from a full prefill"):
        _generate(SharedPrefixGenerate(model), inputs)


# --- through the lmms-eval CLI -------------------------------------------------------------------------


def _answers(run: dict) -> dict[str, str]:
    return {image_id: record["answer"] for image_id, record in run["records"].items()}


@pytest.mark.slow
def test_lmms_eval_answers_equal_the_plain_class(tiny_qwen, sixteen_image_dataset, tmp_path):
    name, checkpoint = tiny_qwen
    model_args = f"pretrained={checkpoint},device=cpu,device_map=cpu," + ",".join(f"{k}={v}" for k, v in PIXELS.items())
    env = {"IMAGENET_REAL_DATA": str(sixteen_image_dataset), "CUDA_VISIBLE_DEVICES": ""}

    def run(model: str, batch: int, tasks: str, processes: int = 1) -> dict:
        args = ["--model", model, "--model_args", model_args, "--batch_size", str(batch), "--tasks", tasks]
        out = tmp_path / f"{model}-{batch}-{processes}"
        return run_lmms_eval(args, out, env, launcher=TWO_CPU_PROCESSES if processes == 2 else None)

    plain = run(name, 1, "imagenet_real_cw,imagenet_real_ow")
    expected = _answers(plain["imagenet_real_cw"])
    assert len(expected) == 16 and len(set(expected.values())) >= 2
    mixed = run(f"{name}_prefix", 4, "imagenet_real_cw,imagenet_real_ow")
    assert _answers(mixed["imagenet_real_ow"]) == _answers(plain["imagenet_real_ow"])
    assert mixed["imagenet_real_ow"]["log"].count("prefix reuse off") == 1  # open world: full prefill, warned once
    runs = {(4, 1): mixed}
    for batch, processes in ((1, 1), (1, 2), (4, 2)):
        runs[batch, processes] = run(f"{name}_prefix", batch, "imagenet_real_cw", processes)
        assert "prefix reuse off" not in runs[batch, processes]["imagenet_real_cw"]["log"]
    for (batch, processes), result in runs.items():
        cw = result["imagenet_real_cw"]
        assert _answers(cw) == expected, (batch, processes)
        assert cw["log"].count("prefix reuse: cached") == processes, "each process prefills the class list once"
