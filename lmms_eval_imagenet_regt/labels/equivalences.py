"""The equivalence set E: classes that are interchangeable in scoring (e.g. laptop / notebook computer).

E is data, never logic: a JSON file shipped with the package that a user can replace. Pairs are closed
transitively, so each class belongs to exactly one group; scoring compares groups, not raw indices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..files import load_json
from .vocabulary import NUM_CLASSES

DEFAULT_EQUIVALENCES = "default"


@dataclass(frozen=True)
class EquivalenceSet:
    """Classes grouped by the transitive closure of the equivalence pairs."""

    source: str
    sha256: str
    #: canonical[c] is the smallest class index of c's group.
    canonical: tuple[int, ...] = field(repr=False)
    #: group members keyed by their canonical index.
    members: dict[int, tuple[int, ...]] = field(repr=False, compare=False)

    @property
    def groups(self) -> list[tuple[int, ...]]:
        """The groups of more than one class."""
        return [group for group in self.members.values() if len(group) > 1]

    def expand(self, labels: Iterable[int]) -> frozenset[int]:
        """Every class equivalent to any of the labels (the admissible set L*)."""
        return frozenset(i for root in self.collapse(labels) for i in self.members[root])

    def collapse(self, labels: Iterable[int]) -> frozenset[int]:
        """One representative per group: what the label categories count."""
        canonical = self.canonical
        return frozenset([canonical[label] for label in labels])

    @classmethod
    def from_pairs(cls, pairs: Iterable[Iterable[int]], source: str = "custom") -> EquivalenceSet:
        canonical = list(range(NUM_CLASSES))
        groups = [sorted(int(c) for c in pair) for pair in pairs]
        changed = True
        while changed:  # relabel to the group minimum until stable: the transitive closure
            changed = False
            for group in groups:
                root = min(canonical[c] for c in group)
                for c in group:
                    if canonical[c] != root:
                        for i, value in enumerate(canonical):
                            if value == canonical[c]:
                                canonical[i] = root
                        changed = True
        members: dict[int, list[int]] = {}
        for index, root in enumerate(canonical):
            members.setdefault(root, []).append(index)
        digest = hashlib.sha256(json.dumps(sorted(groups)).encode()).hexdigest()[:16]
        return cls(
            source=source,
            sha256=digest,
            canonical=tuple(canonical),
            members={root: tuple(group) for root, group in members.items()},
        )

    @classmethod
    def empty(cls) -> EquivalenceSet:
        return cls.from_pairs([], source="none")

    @classmethod
    def load(cls, spec: str | Path = DEFAULT_EQUIVALENCES) -> EquivalenceSet:
        """`default` (the shipped file), `none` (no equivalences), or the path of a JSON file.

        The file holds `{"pairs": [{"classes": [a, b, ...], "source": "..."}, ...]}`; a bare list of
        index lists is accepted too. Loaded once per process and spec (prompts of 50,000 images use it).
        """
        return _load(str(spec))

    @classmethod
    def _from_json(cls, data: object, source: str) -> EquivalenceSet:
        entries = data.get("pairs") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise InputError(source, "expected a list of pairs (or an object with a 'pairs' list)")
        pairs = []
        for number, entry in enumerate(entries, start=1):
            classes = entry.get("classes") if isinstance(entry, dict) else entry
            if (
                not isinstance(classes, list)
                or len(classes) < 2
                or not all(isinstance(c, int) and 0 <= c < NUM_CLASSES for c in classes)
            ):
                raise InputError(source, f"pair {number} must list two or more class indices in 0..999", value=classes)
            pairs.append(classes)
        return cls.from_pairs(pairs, source=source)


@cache
def _load(spec: str) -> EquivalenceSet:
    if spec == "none":
        return EquivalenceSet.empty()
    if spec == DEFAULT_EQUIVALENCES:
        text = resources.files("lmms_eval_imagenet_regt").joinpath("data/equivalences.json").read_text()
        return EquivalenceSet._from_json(json.loads(text), source=DEFAULT_EQUIVALENCES)
    if not Path(spec).is_file():
        raise InputError(spec, "equivalence set is not 'default', 'none' or an existing JSON file")
    return EquivalenceSet._from_json(load_json(spec), source=spec)
