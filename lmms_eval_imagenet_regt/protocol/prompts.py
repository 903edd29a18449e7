"""The prompts of the four protocols.

open world (OW): no class list; example answers fix the level of detail.
closed world (CW, CW+): all 1000 names before the image, identical bytes for every image, so servers with
  prefix caching (vLLM, SGLang, API prompt caching) compute the list once.
multiple choice (MC): the image, then n lettered options.
"""

from __future__ import annotations

import hashlib
import json
import string
from functools import cache

from .order import class_order
from .settings import ProtocolConfig

OW_EXAMPLES = ("golden retriever", "espresso maker", "red fox", "school bus")


@cache
def class_list_prompt(config: ProtocolConfig) -> str:
    """The shared prefix of CW and CW+: instructions and the 1000 classes (built once per setting)."""
    names = config.vocabulary.names
    order = class_order(config.class_order, len(names))
    if config.label_format == "ids":
        listing = "\n".join(f"{index}: {names[index]}" for index in order)
        return (
            "You will classify an image into one of the 1000 categories listed below, each with its number.\n"
            f"{listing}\n"
        )
    listing = "\n".join(names[index] for index in order)
    return f"You will classify an image into one of the 1000 categories listed below, one per line.\n{listing}\n"


def prefix_prompt(config: ProtocolConfig) -> str:
    """The text before the image: the class list for CW/CW+, nothing otherwise."""
    return class_list_prompt(config) if config.protocol in ("cw", "cwplus") else ""


def question_prompt(config: ProtocolConfig, options: list[str] | None = None) -> str:
    """The text after the image."""
    if config.protocol == "ow":
        examples = ", ".join(f'"{e}"' for e in OW_EXAMPLES)
        return (
            "What is the main object in this image? Answer with the name of its category only, as specifically "
            f'as you can, for example {examples}; not a general word such as "dog", "machine" or "animal".'
        )
    if config.protocol == "mc":
        lines = "\n".join(
            f"{letter}. {option}" for letter, option in zip(string.ascii_uppercase, options or [], strict=False)
        )
        return (
            "Which option best names the main object in this image?\n"
            f"{lines}\nAnswer with the letter of the option only."
        )
    if config.label_format == "ids":
        return "Which category from the list best describes the main object in this image? Answer with its number only."
    return (
        "Which category from the list best describes the main object in this image? "
        "Answer with the exact category name from the list and nothing else."
    )


def prompt_hash(config: ProtocolConfig, pre_prompt: str = "", post_prompt: str = "") -> str:
    """Hash of the prompt's fixed text (prefix, question with MC options as placeholders, and the model's
    pre/post prompt), so two runs with different prompts never look alike."""
    question = question_prompt(config, [f"<option {i}>" for i in range(config.num_options)])
    parts = [prefix_prompt(config), pre_prompt, question, post_prompt]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
