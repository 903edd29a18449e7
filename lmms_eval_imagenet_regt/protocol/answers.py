"""Reading an answer: what the model said, and what it is worth before any embedding-based mapping.

Every answer ends in exactly one outcome:

- `failed`: the backend reported a failed request (lmms-eval's `[LMMS_EVAL_REQUEST_FAILED ...]` text, or
  an empty response from an API backend);
- `truncated`: the answer stopped inside a reasoning block (`<think>` never closed, e.g. cut off by
  `max_new_tokens`): what it holds is reasoning, not an answer;
- `unanswered`: nothing is left once chat-template tokens and reasoning are removed;
- `parsed`: the answer was read by the protocol's rule (a class name, a number, an option letter), whether
  or not it named a candidate of the prompt (`out_of_prompt`);
- `mapped`: a free-text answer given a class by the text encoder (OW always; CW+ when out of prompt).

Failed, truncated and unanswered answers are never embedded or mapped; they are scored wrong and counted.

Cleaning follows the paper's closed-world rule: chat-template special tokens and complete reasoning blocks
are not part of the answer and are removed; nothing else (`lenient` also drops an "Answer:" prefix, quotes,
end punctuation and a leading article). A closing tag with no opening tag means the chat template opened
the block in the prompt (Qwen3, DeepSeek-R1): the answer is what follows the last closing tag.

Any string is accepted: invalid UTF-16 surrogates become U+FFFD, and only the first `CLEANED_CHARS`
characters of a cleaned answer are kept (more than any text encoder reads; no class name is that long).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from .settings import ProtocolConfig

OUTCOMES = ("parsed", "mapped", "unanswered", "truncated", "failed")
#: The text lmms-eval's API model classes return for a request that failed after its retries.
FAILURE_MARKER = "[LMMS_EVAL_REQUEST_FAILED"
#: Reasoning tags removed from answers: lmms-eval's defaults (`think`, `analysis`) and common others.
REASONING_TAGS = ("think", "thinking", "reasoning", "analysis")
CLEANED_CHARS = 2000

_TAGS = "|".join(REASONING_TAGS)
_COMPLETE_BLOCK = re.compile(rf"<({_TAGS})>.*?</\1>", re.DOTALL | re.IGNORECASE)
_OPENING = re.compile(rf"<(?:{_TAGS})>", re.IGNORECASE)
_CLOSING = re.compile(rf"</(?:{_TAGS})>", re.IGNORECASE)
_CHAT_TOKENS = re.compile(
    r"<\|im_start\|>\s*(?:assistant|user|system)?|<start_of_turn>\s*(?:model)?|<\|[^|>\s]{1,40}\|>|</?s>"
    r"|<end_of_turn>|<eos>|<bos>"
)
_ANSWER_PREFIX = re.compile(r"^\s*(?:(?:final\s+)?answer|assistant|category|class|option)\s*[:：]\s*", re.IGNORECASE)
#: "B", "(b)", "B)", "B. tench", "B: tench" — but not "A dog" (an article, not an option letter).
_LETTER = re.compile(r"\(?([A-Za-z])(?:[).:\]].*|\s*)", re.DOTALL)
_CLASS_NUMBER = re.compile(r"([0-9]{1,3})\.?")


@dataclass(frozen=True)
class Reading:
    """One answer, read. `classes` are the predicted classes (empty when none); a `mapped` reading gets its
    class and `similarity` from the text encoder (`with_mapping`)."""

    outcome: str
    cleaned: str
    classes: tuple[int, ...] = ()
    #: CW, CW+, MC: the answer (parsed or mapped) named no candidate of the prompt.
    out_of_prompt: bool = False
    similarity: float | None = None

    @property
    def needs_mapping(self) -> bool:
        return self.outcome == "mapped" and self.similarity is None

    def with_mapping(self, class_index: int, similarity: float) -> Reading:
        return Reading("mapped", self.cleaned, (class_index,), self.out_of_prompt, similarity)


def valid_text(text: str) -> str:
    """The text with lone UTF-16 surrogates replaced by U+FFFD (they cannot be encoded or embedded)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean(raw: str | None, *, empty_is_failure: bool = False) -> tuple[str, str | None]:
    """(cleaned answer, outcome when already decided: failed / truncated / unanswered, else None)."""
    text = valid_text(raw) if isinstance(raw, str) else ""
    if text.lstrip().startswith(FAILURE_MARKER) or (empty_is_failure and not text.strip()):
        return "", "failed"
    text = _CHAT_TOKENS.sub("", text)
    text = _COMPLETE_BLOCK.sub("", text)
    if _OPENING.search(text):
        return "", "truncated"
    closings = list(_CLOSING.finditer(text))
    if closings:
        text = text[closings[-1].end() :]
    text = text.strip()[:CLEANED_CHARS]
    return (text, None) if text else ("", "unanswered")


def read_answer(
    raw: str | None,
    config: ProtocolConfig,
    options: list[int] | None = None,
    *,
    empty_is_failure: bool = False,
    class_indices: bool = False,
) -> Reading:
    """Read one answer by the protocol's rule; total: any string gives a Reading, never an exception.

    `class_indices`: the answer is a class index (a classifier's top class), whatever the protocol shows.
    """
    cleaned, outcome = clean(raw, empty_is_failure=empty_is_failure)
    if outcome:
        return Reading(outcome, cleaned)
    if class_indices:
        match = _CLASS_NUMBER.fullmatch(cleaned)
        classes = (int(match.group(1)),) if match and int(match.group(1)) < 1000 else ()
        shown = classes and (config.protocol != "mc" or classes[0] in (options or []))
        return Reading("parsed", cleaned, classes, out_of_prompt=config.protocol != "ow" and not shown)
    if config.protocol == "ow":
        return Reading("mapped", cleaned)
    if config.protocol == "mc":
        classes = _parse_option(cleaned, options or [], config)
        return Reading("parsed", cleaned, classes, out_of_prompt=not classes)
    classes = _parse_closed_world(_ANSWER_PREFIX.sub("", cleaned) if config.lenient else cleaned, config)
    if classes:
        return Reading("parsed", cleaned, classes)
    return Reading("mapped" if config.protocol == "cwplus" else "parsed", cleaned, out_of_prompt=True)


def _parse_closed_world(answer: str, config: ProtocolConfig) -> tuple[int, ...]:
    if config.label_format == "ids":
        match = _CLASS_NUMBER.fullmatch(answer.strip())
        return (int(match.group(1)),) if match and int(match.group(1)) < 1000 else ()
    return tuple(sorted(config.vocabulary.indices_for(answer, lenient=config.lenient)))


def _parse_option(answer: str, options: list[int], config: ProtocolConfig) -> tuple[int, ...]:
    """A letter ("B", "(b)", "B. tench", "Answer: B") or the name of one of the options."""
    answer = _ANSWER_PREFIX.sub("", answer)
    letters = string.ascii_uppercase[: len(options)]
    match = _LETTER.fullmatch(answer)
    if match and match.group(1).upper() in letters:
        return (options[letters.index(match.group(1).upper())],)
    named = config.vocabulary.indices_for(answer, lenient=True)
    return tuple(sorted(c for c in options if c in named))
