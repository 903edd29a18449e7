"""Protocol settings: everything that changes a prompt, a parse or a score, recorded with every result.

A task states its settings once, in its YAML `metadata` (`protocol: cwplus`, ...); every other setting has
the default below. Unknown keys are an error, so a typo (`encodr:`) never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import InputError
from ..labels.equivalences import DEFAULT_EQUIVALENCES, EquivalenceSet
from ..labels.vocabulary import DEFAULT_NAME_SET, ClassVocabulary
from .mapping import DEFAULT_ENCODER, DEFAULT_TEMPLATES, check_templates
from .options import DEFAULT_NUM_OPTIONS, OPTION_SETS
from .order import CLASS_ORDER, IMAGE_ORDER, SUBSET

PROTOCOLS = ("ow", "cw", "cwplus", "mc")
LABEL_FORMATS = ("names", "ids")
#: lmms-eval's own `metadata` keys, allowed beside the protocol settings.
LMMS_EVAL_METADATA = ("version", "num_fewshot")


@dataclass(frozen=True)
class ProtocolConfig:
    """Every setting that changes a prompt, a parse or a score; recorded in results and hashed."""

    protocol: str
    names: str = DEFAULT_NAME_SET
    label_format: str = "names"
    option_set: str = "imgt_random"
    num_options: int = DEFAULT_NUM_OPTIONS
    seed: int = 0
    encoder: str = DEFAULT_ENCODER
    #: a named set (`openai`, `simple`, `one`; see protocol/mapping.py) or the templates themselves
    templates: str | tuple[str, ...] = DEFAULT_TEMPLATES
    #: off: the paper's closed-world rule (lower-case, trim); on: also drop an "Answer:" prefix, quotes,
    #: end punctuation and a leading article before matching.
    lenient: bool = False
    equivalences: str = DEFAULT_EQUIVALENCES
    #: which images, in which order, and the CW class-list order (see protocol/order.py)
    image_order: str = "id"
    subset: str = "all"
    class_order: str = "fixed"

    def __post_init__(self) -> None:
        for name, kind in (("protocol", str), ("names", str), ("encoder", str), ("equivalences", str)):
            if not isinstance(getattr(self, name), kind):
                raise InputError(name, "must be a string", value=getattr(self, name))
        if self.protocol not in PROTOCOLS:
            raise InputError("protocol", f"must be one of {', '.join(PROTOCOLS)}", value=self.protocol)
        if self.label_format not in LABEL_FORMATS:
            raise InputError("label_format", f"must be one of {', '.join(LABEL_FORMATS)}", value=self.label_format)
        if self.option_set not in OPTION_SETS:
            raise InputError("option_set", f"must be one of {', '.join(OPTION_SETS)}", value=self.option_set)
        for name in ("num_options", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(name, "must be an integer", value=value)
        if not 2 <= self.num_options <= 26:
            raise InputError("num_options", "must be between 2 and 26 (letters A–Z)", value=self.num_options)
        if not isinstance(self.lenient, bool):
            raise InputError("lenient", "must be true or false", value=self.lenient)
        for name, pattern, allowed in (
            ("image_order", IMAGE_ORDER, "id, by_class or shuffled:SEED"),
            ("subset", SUBSET, "all or one_per_class:SEED"),
            ("class_order", CLASS_ORDER, "fixed or shuffled:SEED"),
        ):
            if not isinstance(getattr(self, name), str) or not pattern.fullmatch(getattr(self, name)):
                raise InputError(name, f"must be {allowed}", value=getattr(self, name))
        if self.class_order != "fixed" and self.protocol not in ("cw", "cwplus"):
            raise InputError("class_order", "orders the class list of CW and CW+ only", value=self.class_order)
        check_templates(self.templates)

    @classmethod
    def from_metadata(cls, metadata: dict | None, source: str, other_keys: tuple[str, ...] = ()) -> ProtocolConfig:
        """The settings a task's YAML `metadata` states (lmms-eval's own keys and `other_keys` are skipped)."""
        skipped = (*LMMS_EVAL_METADATA, *other_keys)
        settings = {k: v for k, v in (metadata or {}).items() if k not in skipped}
        return cls.from_dict(settings, source)

    @classmethod
    def from_dict(cls, settings: dict, source: str) -> ProtocolConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(source, f"unknown protocol setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        if "protocol" not in settings:
            raise InputError(source, "the task states no 'protocol' (one of ow, cw, cwplus, mc) in its metadata")
        values = dict(settings)
        if isinstance(values.get("templates"), list):
            values["templates"] = tuple(values["templates"])
        try:
            return cls(**values)
        except InputError as error:
            raise InputError(source, f"protocol setting {error}") from None

    @property
    def vocabulary(self) -> ClassVocabulary:
        return ClassVocabulary.load(self.names)

    @property
    def equivalence_set(self) -> EquivalenceSet:
        return EquivalenceSet.load(self.equivalences)

    @property
    def maps_answers(self) -> bool:
        """Whether free-text answers are mapped to classes by text embedding (OW always, CW+ when OOP)."""
        return self.protocol in ("ow", "cwplus")

    def to_dict(self) -> dict:
        templates = self.templates if isinstance(self.templates, str) else list(self.templates)
        return {**asdict(self), "templates": templates}
