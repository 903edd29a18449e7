"""Label categories (the paper's Table 1): a property of an image's labels, not of any prediction.

N = no label; S = one label; M = several; `+` when the original label (ImGT) is among them, `-` when not;
A = all. Equivalent classes (laptop / notebook computer) are collapsed into one label first.
"""

from __future__ import annotations

from .equivalences import EquivalenceSet
from .ground_truth import ImageLabels

CATEGORIES = ("A", "S", "S+", "S-", "M", "M+", "M-", "N")
#: The categories every image falls in exactly one of.
LEAF_CATEGORIES = ("S+", "S-", "M+", "M-", "N")
#: The parts each aggregate category is made of (A's N part depends on the scoring convention).
PARTS = {"S": ("S+", "S-"), "M": ("M+", "M-"), "A": ("S+", "S-", "M+", "M-", "N")}


def image_category(record: ImageLabels, equivalences: EquivalenceSet) -> str:
    """N, S+, S−, M+ or M− (written S-, M-), after collapsing equivalent labels into one."""
    return category_of(equivalences.collapse(record.labels), equivalences.canonical[record.imgt])


def category_of(label_groups: frozenset[int], imgt_group: int) -> str:
    """The category of collapsed labels (equivalence-group representatives) and the ImGT group."""
    if not label_groups:
        return "N"
    return ("S" if len(label_groups) == 1 else "M") + ("+" if imgt_group in label_groups else "-")
