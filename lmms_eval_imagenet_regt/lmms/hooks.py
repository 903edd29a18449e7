"""lmms-eval hooks: documents → prompts, answers → per-image records, records → the paper's metrics.

Task YAMLs point here (`!function lmms_eval_imagenet_regt.lmms.hooks.NAME`), so the logic lives once in
the package. Flow per task:

1. `doc_to_messages` / `doc_to_text` build the prompt from the protocol settings in
   `lmms_eval_specific_kwargs` (class list before the image, byte-identical across images).
2. `AnswerFilter` (the task's filter, with the same settings) tags each answer with those settings.
3. `process_results` parses the answer against the image's prompt and adds the image's ground truth: one
   compact per-image record, which also lands in the samples log, so runs can be re-scored later.
4. On rank 0, each metric's aggregation (`aggregate_<metric>`) scores all records; the embedding mapping
   of OW/CW+ answers and the scoring run once per task and are shared by all its metrics.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from lmms_eval.api.filter import Filter

from ..labels.equivalences import EquivalenceSet
from ..labels.ground_truth import ImageLabels, normalize_image_id
from ..models.local_model import describe_models
from ..protocol.options import sample_options
from ..protocol.settings import ProtocolConfig, class_list_prompt, question_prompt
from ..records import METRICS, make_record, score_records

#: Protocol settings by hash, registered by each AnswerFilter so rank 0's aggregation can find them.
_CONFIGS: dict[str, ProtocolConfig] = {}
_TABLES: OrderedDict[str, dict[str, Any]] = OrderedDict()


def _config_key(config: ProtocolConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _labels(doc: dict) -> ImageLabels:
    """The ground truth carried by a row of the joined dataset."""
    return ImageLabels(
        image_id=normalize_image_id(doc["image_id"], "dataset row"),
        imgt=int(doc["imgt"]),
        labels=frozenset(int(c) for c in doc["labels"] or ()),
        not_sure=bool(doc.get("not_sure", False)),
    )


def _options(doc: dict, config: ProtocolConfig) -> list[int]:
    equivalences = EquivalenceSet.load()
    return sample_options(_labels(doc), config.option_set, config.num_options, config.seed, equivalences)


# --- prompts -----------------------------------------------------------------------------------------


def doc_to_visual(doc: dict) -> list:
    return [doc["image"].convert("RGB")]


def _prompt_parts(doc: dict, lmms_eval_specific_kwargs: dict | None) -> tuple[str, str]:
    config = ProtocolConfig.from_kwargs(lmms_eval_specific_kwargs)
    prefix = class_list_prompt(config) if config.protocol in ("cw", "cwplus") else ""
    names = config.vocabulary.names
    options = [names[c] for c in _options(doc, config)] if config.protocol == "mc" else None
    kwargs = lmms_eval_specific_kwargs or {}
    question = kwargs.get("pre_prompt", "") + question_prompt(config, options) + kwargs.get("post_prompt", "")
    return prefix, question


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """Plain-text prompt for simple (non-chat) models, which place the image themselves."""
    prefix, question = _prompt_parts(doc, lmms_eval_specific_kwargs)
    return f"{prefix}\n{question}" if prefix else question


def doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[dict]:
    """Chat prompt: the shared class list first, then the image, then the per-image question."""
    prefix, question = _prompt_parts(doc, lmms_eval_specific_kwargs)
    content = [{"type": "text", "text": prefix}] if prefix else []
    content += [{"type": "image", "url": doc["image"].convert("RGB")}, {"type": "text", "text": question}]
    return [{"role": "user", "content": content}]


# --- answers -----------------------------------------------------------------------------------------


class AnswerFilter(Filter):
    """Tags each raw answer with the protocol settings it must be parsed by.

    lmms-eval hands filters the answers without their documents (its `docs` argument is the whole
    dataset, not aligned with the answers once requests are sharded or limited), so the parse itself
    happens in `process_results`, which has the document. The tag travels as a JSON string because
    lmms-eval strips filtered answers as text.
    """

    def __init__(self, **settings: Any) -> None:
        self.config = ProtocolConfig.from_kwargs(settings)
        self.key = _config_key(self.config)
        _CONFIGS[self.key] = self.config

    def apply(self, resps: list[list[str]], docs: object) -> list[list[str]]:
        return [
            [json.dumps({"config": self.key, "raw_answer": a if isinstance(a, str) else ""}) for a in answers]
            for answers in resps
        ]


def process_results(doc: dict, results: list[str]) -> dict[str, dict]:
    """Parse the answer against this image's prompt; one record (answer + ground truth) per image.

    The same record goes under every metric name of the protocol; each aggregation reads what it needs.
    """
    tagged = json.loads(results[0])
    config = _CONFIGS[tagged["config"]]
    options = _options(doc, config) if config.protocol == "mc" else None
    record = make_record(_labels(doc), tagged["raw_answer"], config, tagged["config"], options)
    return dict.fromkeys(METRICS[config.protocol], record)


# --- metrics -----------------------------------------------------------------------------------------


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _cached_scores(records: list[dict]) -> dict[str, Any]:
    """Score once per task: every metric's aggregation receives the same records."""
    key = hashlib.sha256(json.dumps([[r["image_id"], r["config"], r["answer"]] for r in records]).encode()).hexdigest()
    if key not in _TABLES:
        config = _CONFIGS[records[0]["config"]]
        _TABLES[key] = score_records(records, config, world_size=_world_size(), model_info=describe_models())
        while len(_TABLES) > 8:
            _TABLES.popitem(last=False)
    return _TABLES[key]


def _aggregator(metric: str):
    def aggregate(records: list[dict]) -> Any:
        return _cached_scores(records)[metric]

    aggregate.__name__ = f"aggregate_{metric}"
    return aggregate


def __getattr__(name: str):
    """`aggregate_<metric>` for every metric of `METRICS` (YAML: `!function ...lmms_hooks.aggregate_regt_A`)."""
    metric = name.removeprefix("aggregate_")
    if name.startswith("aggregate_") and any(metric in metrics for metrics in METRICS.values()):
        return _aggregator(metric)
    raise AttributeError(name)
