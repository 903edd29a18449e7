"""Closed-world images/s of a Qwen3-VL with and without prefix reuse (`qwen3_vl_prefix`), batch 1/8/32.

    python benchmarks/bench_prefix_reuse.py [--size 2b|small] [--images 64] [--batch-sizes 1,8,32]
                                            [--device cuda] [--max-new-tokens 8]

A Qwen3-VL built from a config with random weights (no download): `2b` has Qwen3-VL-2B's dimensions
(28 layers of width 2048, a 24-block vision tower), `small` a 256-wide, 4-layer model for the CPU. The
tokenizer is a toy BPE sized so the class list takes ~3,500 tokens, like Qwen's. Real validation images
are resized to 500x375, the most common ImageNet validation size. Both sides run the model's own
`generate` on the same pre-processed batches; the reuse side includes its one prefill of the class list.
Figures are generation time only (lmms-eval's pre-processing is the same on both sides).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "imagenet_val_1300" / "images"
SIZES = {
    "2b": (
        {
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "tie_word_embeddings": True,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5000000.0,
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
        },
        {
            "depth": 24,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [5, 11, 17],
        },
    ),
    "small": (
        {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "head_dim": 32},
        {"depth": 2, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "out_hidden_size": 256},
    ),
}


def _inputs(processor, images: list[Image.Image], batch: int) -> list:
    from lmms_eval_imagenet_regt.protocol.prompts import class_list_prompt, question_prompt
    from lmms_eval_imagenet_regt.protocol.settings import ProtocolConfig

    config = ProtocolConfig(protocol="cw")
    # the closed-world prompt as the tasks build it: class list, image, question
    content = [
        {"type": "text", "text": class_list_prompt(config)},
        {"type": "image"},
        {"type": "text", "text": question_prompt(config)},
    ]
    batches = []
    for first in range(0, len(images), batch):
        chunk = images[first : first + batch]
        messages = []
        for _image in chunk:
            system = {"role": "system", "content": "You are a helpful assistant."}
            messages.append([system, {"role": "user", "content": content}])
        texts = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batches.append(processor(text=texts, images=chunk, padding=True, padding_side="left", return_tensors="pt"))
    return batches


def _images_per_second(generate, batches, device: str, max_new_tokens: int) -> float:
    count = sum(len(b["input_ids"]) for b in batches)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        for inputs in batches:
            generate(**inputs.to(device), max_new_tokens=max_new_tokens, do_sample=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="2b" if torch.cuda.is_available() else "small")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--folder", type=Path, default=DEFAULT_IMAGES)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from transformers import Qwen3VLForConditionalGeneration

    from lmms_eval_imagenet_regt.models.prefix_reuse import SharedPrefixGenerate
    from tests.tiny_models import qwen3_vl_parts

    text, vision = SIZES[args.size]
    config, processor, _ = qwen3_vl_parts(text, vision, vocab_size=2600)
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).to(args.device, dtype).eval()
    paths = sorted(args.folder.iterdir())[: args.images]
    images = [Image.open(p).convert("RGB").resize((500, 375)) for p in paths]
    first = _inputs(processor, images[:1], 1)[0]
    vision_start = first["input_ids"][0].tolist().index(config.vision_start_token_id)
    print(
        f"Qwen3-VL {args.size} ({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters, random), "
        f"{args.device}, {dtype}; prompt {first['input_ids'].shape[1]} tokens, {vision_start} shared before "
        f"the image; {len(images)} images, {args.max_new_tokens} new tokens"
    )
    _images_per_second(model.generate, _inputs(processor, images[:1], 1), args.device, 2)  # warm-up
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        batches = _inputs(processor, images, batch)
        plain = _images_per_second(model.generate, batches, args.device, args.max_new_tokens)
        shared = SharedPrefixGenerate(model)
        reuse = _images_per_second(shared.generate, batches, args.device, args.max_new_tokens)
        shared.release()
        memory = ""
        if args.device.startswith("cuda"):
            memory = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
            torch.cuda.reset_peak_memory_stats()
        print(
            f"batch {batch:>2}: full prefill {plain:7.2f} images/s, prefix reuse {reuse:7.2f} images/s "
            f"({reuse / plain:.1f}x){memory}"
        )


if __name__ == "__main__":
    main()
