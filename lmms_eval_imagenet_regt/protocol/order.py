"""Which images a task evaluates, in which order, and the order of the CW class list.

The paper (Supplementary) finds that image order, batch composition and the class order of the CW prompt
change accuracy. These settings make each one explicit, seeded and recorded:

- `image_order`: `id` (the default: by image id), `by_class` (original label, then id) or `shuffled:SEED`;
  applied to the documents before lmms-eval deals them to processes, so batches follow it.
- `subset`: `all`, or `one_per_class:SEED`: one image per original class present (the paper's MC table
  uses 625 such images), each class's image drawn with its own seed, so the choice for a class does not
  depend on which other images are present.
- `class_order`: `fixed` (the vocabulary's order, one cache-friendly prompt for every image) or
  `shuffled:SEED` (the paper's "ImGT + 999" repeats vary it).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

IMAGE_ORDER = re.compile(r"id|by_class|shuffled:\d{1,9}")
SUBSET = re.compile(r"all|one_per_class:\d{1,9}")
CLASS_ORDER = re.compile(r"fixed|shuffled:\d{1,9}")


def seed_of(setting: str) -> int | None:
    """The seed of a seeded setting (`shuffled:3` → 3), None for an unseeded one."""
    _, _, seed = setting.partition(":")
    return int(seed) if seed else None


def select_rows(ids: list[str], classes: list[int], image_order: str, subset: str) -> list[int]:
    """Row indices of the documents to evaluate, in the order to evaluate them."""
    rows = sorted(range(len(ids)), key=ids.__getitem__)
    if subset != "all":
        by_class: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            by_class[classes[row]].append(row)
        seed = seed_of(subset)
        rows = sorted(
            (random.Random(f"{seed}:{label}").choice(members) for label, members in by_class.items()),
            key=ids.__getitem__,
        )
    if image_order == "by_class":
        rows.sort(key=lambda row: (classes[row], ids[row]))
    elif image_order != "id":
        random.Random(seed_of(image_order)).shuffle(rows)
    return rows


def class_order(class_order_setting: str, count: int) -> list[int]:
    """The class indices in the order the CW prompt lists them."""
    order = list(range(count))
    if class_order_setting != "fixed":
        random.Random(seed_of(class_order_setting)).shuffle(order)
    return order
