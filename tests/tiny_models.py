"""Tiny randomly initialised checkpoints of real model classes, built offline in seconds.

The weights are noise, so the answers are too; what is exercised is the real model class, processor,
chat template and lmms-eval model wrapper, end to end.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' or 'video' in item %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(corpus: list[str], vocab_size: int = 700):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )


def _qwen_tokenizer_ids(vocab_size: int = 700):
    """The toy tokenizer both Qwen builders share, and the ids of its special tokens."""
    from lmms_eval_imagenet_regt import ClassVocabulary

    corpus = list(ClassVocabulary.load("clean").names) + ["Which category best describes the main object?"] * 5
    tokenizer = _tokenizer(corpus, vocab_size)
    return tokenizer, {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}


def _qwen_text_config(tokenizer, ids: dict[str, int], **rope: object) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, **rope},
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _qwen_token_ids(ids: dict[str, int]) -> dict[str, int]:
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _vision_config(patch_size: int, **extra: object) -> dict:
    """A 2-block, 32-wide vision tower projecting to the toy language model's 64 dimensions."""
    return {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "patch_size": patch_size,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        **extra,
    }


def _processor(processor_class, video_processor_class, tokenizer, patch_size: int):
    from transformers import Qwen2VLImageProcessor

    sizes = {"patch_size": patch_size, "merge_size": 2, "temporal_patch_size": 2}
    return processor_class(
        image_processor=Qwen2VLImageProcessor(**sizes),
        video_processor=video_processor_class(**sizes),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _save(model_class, config, processor, ids: dict[str, int], out: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model = model_class(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _qwen_parts(classes: tuple, patch_size: int, rope: dict, text: dict, vision: dict, vocab_size: int = 700):
    """(config, processor, special-token ids) from (config, processor, video processor) classes; `text` and
    `vision` override the tiny sizes, `rope` adds to the default rotary settings."""
    config_class, processor_class, video_processor_class = classes
    tokenizer, ids = _qwen_tokenizer_ids(vocab_size)
    config = config_class(
        text_config={**_qwen_text_config(tokenizer, ids, **rope), **text},
        vision_config={**_vision_config(patch_size), **vision},
        **_qwen_token_ids(ids),
    )
    return config, _processor(processor_class, video_processor_class, tokenizer, patch_size), ids


def qwen3_vl_parts(text: dict | None = None, vision: dict | None = None, vocab_size: int = 700):
    """(config, processor, special-token ids) of a Qwen3-VL: the tiny sizes, or others given as overrides."""
    from transformers import Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor

    return _qwen_parts(
        (Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor),
        16,
        {"mrope_section": [2, 3, 3], "mrope_interleaved": True},
        text or {},
        {"num_position_embeddings": 64, "deepstack_visual_indexes": [1], **(vision or {})},
        vocab_size,
    )


def build_tiny_qwen3_vl(out: Path) -> Path:
    """A Qwen3-VL checkpoint with a 64-wide, 2-layer language model and a 2-block vision tower."""
    from transformers import Qwen3VLForConditionalGeneration

    config, processor, ids = qwen3_vl_parts()
    return _save(Qwen3VLForConditionalGeneration, config, processor, ids, out)


def build_tiny_qwen2_5_vl(out: Path) -> Path:
    """A Qwen2.5-VL checkpoint: the same toy language model, a 2-block windowed vision tower (patch 14)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLVideoProcessor,
    )

    config, processor, ids = _qwen_parts(
        (Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor),
        14,
        {"mrope_section": [2, 3, 3]},
        {},
        {"window_size": 56, "fullatt_block_indexes": [1]},
    )
    return _save(Qwen2_5_VLForConditionalGeneration, config, processor, ids, out)


def build_tiny_paligemma2(out: Path) -> Path:
    """A PaliGemma 2 checkpoint (Gemma 2 language model, SigLIP vision tower), 64 wide, 2 layers."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        Gemma2Config,
        GemmaTokenizerFast,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessor,
        SiglipVisionConfig,
    )

    from lmms_eval_imagenet_regt import ClassVocabulary

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(ClassVocabulary.load().names) + ["answer en What is the main object?"] * 5, trainer)
    tokenizer = GemmaTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 4  # (32 / 16) ** 2 patches
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    vocab = len(processor.tokenizer)
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
            projection_dim=64,
        ).to_dict(),
        text_config=Gemma2Config(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=2,
        ).to_dict(),
        image_token_id=processor.tokenizer.convert_tokens_to_ids("<image>"),
        projection_dim=64,
        hidden_size=64,
    )
    config.text_config.vocab_size = vocab
    torch.manual_seed(0)
    model = PaliGemmaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = 1
    model.generation_config.pad_token_id = 0
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


if __name__ == "__main__":
    import sys

    print(build_tiny_qwen3_vl(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen3-vl")))
