"""The four protocols: their settings, prompts and answer parsing.

open world (OW): no class list; example answers fix the level of detail; the answer is mapped later by
  text embedding.
closed world (CW): all 1000 names in the prompt; the answer must equal one (lower-case, trim), else it is
  out of prompt (OOP) and wrong.
closed world+ (CW+): CW, but an OOP answer is mapped to the nearest class by text embedding.
multiple choice (MC): n lettered options, one or two correct; parsed to a letter or an option name.

The class list comes before the image and is byte-identical for every image, so servers with prefix
caching (vLLM, SGLang, API prompt caching) compute it once.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import asdict, dataclass, field

from ..errors import InputError
from ..labels.vocabulary import DEFAULT_NAME_SET, ClassVocabulary
from .mapping import DEFAULT_ENCODER, DEFAULT_TEMPLATES
from .options import DEFAULT_NUM_OPTIONS, OPTION_SETS

PROTOCOLS = ("ow", "cw", "cwplus", "mc")
LABEL_FORMATS = ("names", "ids")
OW_EXAMPLES = ("golden retriever", "espresso maker", "red fox", "school bus")

_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_UNCLOSED_REASONING = re.compile(r"^.*</(think|thinking|reasoning)>", re.DOTALL | re.IGNORECASE)
_CHAT_NOISE = re.compile(
    r"<\|im_start\|>\s*(?:assistant|user|system)?|<start_of_turn>\s*(?:model)?|<\|[^|>]*\|>|</?s>|<end_of_turn>|<eos>"
)
_ANSWER_PREFIX = re.compile(r"^\s*(?:(?:final\s+)?answer|assistant|category|class|option)\s*[:：]\s*", re.IGNORECASE)
#: "B", "(b)", "B)", "B. tench", "B: tench" — but not "A dog" (an article, not an option letter).
_LETTER = re.compile(r"^\(?([A-Za-z])(?:[).:\]].*|\s*)$", re.DOTALL)


@dataclass(frozen=True)
class ProtocolConfig:
    """Every setting that changes a prompt or a parse; recorded in results and hashed."""

    protocol: str
    names: str = DEFAULT_NAME_SET
    label_format: str = "names"
    option_set: str = "imgt_random"
    num_options: int = DEFAULT_NUM_OPTIONS
    seed: int = 0
    encoder: str = DEFAULT_ENCODER
    templates: tuple[str, ...] = field(default=DEFAULT_TEMPLATES)
    lenient: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InputError("protocol", f"must be one of {', '.join(PROTOCOLS)}", value=self.protocol)
        if self.label_format not in LABEL_FORMATS:
            raise InputError("label_format", f"must be one of {', '.join(LABEL_FORMATS)}", value=self.label_format)
        if self.option_set not in OPTION_SETS:
            raise InputError("option_set", f"must be one of {', '.join(OPTION_SETS)}", value=self.option_set)
        if not 2 <= self.num_options <= 26:
            raise InputError("num_options", "must be between 2 and 26 (letters A–Z)", value=self.num_options)
        if not self.templates or not all("{}" in t for t in self.templates):
            raise InputError("templates", "each template needs a '{}' for the class name", value=self.templates)

    @classmethod
    def from_kwargs(cls, kwargs: dict | None) -> ProtocolConfig:
        """Read the settings from a task's `lmms_eval_specific_kwargs` (unknown keys are ignored)."""
        kwargs = dict(kwargs or {})
        known = {name: kwargs[name] for name in cls.__dataclass_fields__ if name in kwargs}
        if "templates" in known:
            known["templates"] = tuple(known["templates"])
        if "protocol" not in known:
            raise InputError("lmms_eval_specific_kwargs", "the task sets no 'protocol'")
        return cls(**known)

    @property
    def vocabulary(self) -> ClassVocabulary:
        return ClassVocabulary.load(self.names)

    def to_dict(self) -> dict:
        return {**asdict(self), "templates": list(self.templates)}


def strip_answer(text: str) -> str:
    """Remove reasoning blocks, chat-template tokens, an 'Answer:' prefix and surrounding whitespace."""
    text = _REASONING.sub("", text or "")
    text = _UNCLOSED_REASONING.sub("", text)
    text = _CHAT_NOISE.sub("", text).strip()
    text = _ANSWER_PREFIX.sub("", text)
    return text.strip()


# --- prompts -----------------------------------------------------------------------------------------


def class_list_prompt(config: ProtocolConfig) -> str:
    """The shared prefix of CW and CW+: instructions and the 1000 classes, identical for every image."""
    names = config.vocabulary.names
    if config.label_format == "ids":
        listing = "\n".join(f"{index}: {name}" for index, name in enumerate(names))
        return (
            "You will classify an image into one of the 1000 categories listed below, each with its number.\n"
            f"{listing}\n"
        )
    listing = "\n".join(names)
    return f"You will classify an image into one of the 1000 categories listed below, one per line.\n{listing}\n"


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


def prompt_hash(config: ProtocolConfig) -> str:
    """Hash of the prompt's fixed text (prefix and question, MC options left as placeholders)."""
    prefix = class_list_prompt(config) if config.protocol in ("cw", "cwplus") else ""
    question = question_prompt(config, [f"<option {i}>" for i in range(config.num_options)])
    return hashlib.sha256(json.dumps([prefix, question]).encode()).hexdigest()[:16]


# --- parsing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer says, before any embedding-based mapping.

    `classes` is empty when the answer names no class of the prompt; `out_of_prompt` is then true for
    CW/CW+/MC (OW has no candidate list, so it is never OOP). `needs_mapping` marks answers the text
    encoder must map (OW always; CW+ when out of prompt).
    """

    answer: str
    classes: tuple[int, ...]
    out_of_prompt: bool
    needs_mapping: bool


def parse_answer(raw: str, config: ProtocolConfig, options: list[int] | None = None) -> ParsedAnswer:
    answer = strip_answer(raw)
    if config.protocol == "ow":
        return ParsedAnswer(answer, (), out_of_prompt=False, needs_mapping=bool(answer))
    if config.protocol == "mc":
        classes = _parse_option(answer, options or [], config)
        return ParsedAnswer(answer, classes, out_of_prompt=not classes, needs_mapping=False)
    classes = _parse_closed_world(answer, config)
    out = not classes
    return ParsedAnswer(
        answer, classes, out_of_prompt=out, needs_mapping=out and config.protocol == "cwplus" and bool(answer)
    )


def _parse_closed_world(answer: str, config: ProtocolConfig) -> tuple[int, ...]:
    if config.label_format == "ids":
        number = answer.strip().rstrip(".")
        return (int(number),) if number.isdigit() and int(number) < 1000 else ()
    return tuple(sorted(config.vocabulary.indices_for(answer, lenient=config.lenient)))


def _parse_option(answer: str, options: list[int], config: ProtocolConfig) -> tuple[int, ...]:
    """A letter ("B", "(b)", "B. tench") or the name of one of the options."""
    letters = string.ascii_uppercase[: len(options)]
    match = _LETTER.match(answer)
    if match and match.group(1).upper() in letters:
        return (options[letters.index(match.group(1).upper())],)
    named = config.vocabulary.indices_for(answer, lenient=True)
    return tuple(sorted(c for c in options if c in named))
