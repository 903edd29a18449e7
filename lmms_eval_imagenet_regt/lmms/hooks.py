"""lmms-eval hooks: documents → prompts, answers → per-image records, records → the paper's metrics.

Task YAMLs name these functions; when lmms-eval loads a task config, the plugin binds each one to the
task's name (`plugin.prepare_task`), so every hook finds its settings and labels in `tasks.TASKS`. Flow:

1. `doc_to_messages` / `doc_to_text` build the prompt (class list before the image, identical bytes for
   every image; MC options sampled once per image).
2. `AnswerFilter` (per process, all of its answers at once) makes every answer valid text and maps the
   free-text ones by text embedding in one batch; the answers themselves pass through unchanged.
3. `process_results` reads the answer (outcome, classes) and returns the per-image headline values (0/1,
   averaged by lmms-eval) and, under `images`, the one compact record that lands in the samples file.
4. On rank 0, `aggregate_images` scores all records: the full per-category breakdown, logged as one small
   table and written to the results file by the plugin (`imagenet_regt.<task>`).
"""

from __future__ import annotations

import functools
from typing import Any

from lmms_eval.api.filter import Filter
from loguru import logger

from ..labels.ground_truth import normalize_image_id
from ..protocol.answers import valid_text
from ..protocol.order import select_rows
from ..protocol.prompts import prefix_prompt, question_prompt
from ..records import RECORD_KEY, breakdown_table, make_record, score_records, unique_records
from ..scoring import judge
from .run_facts import describe_models
from .tasks import TASKS, TaskSpec, versions

#: The full report of each task scored in this process (rank 0), for the results file.
REPORTS: dict[str, dict[str, Any]] = {}


def process_docs(dataset: Any, *, task: str) -> Any:
    """The task's documents in the order (and subset) its settings name, before lmms-eval deals them to
    processes: only the id and label columns are read, the rows are selected lazily."""
    config = TASKS[task].config
    rows = select_rows(dataset["image_id"], dataset["imgt"], config.image_order, config.subset)
    return dataset if rows == list(range(len(dataset))) else dataset.select(rows)


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None, *, task: str) -> list:
    """The image, from the dataset row or read by id from the user's images (never copied)."""
    return [TASKS[task].load_image(doc)]


def _prompt_parts(doc: dict, kwargs: dict | None, task: str) -> tuple[str, str]:
    spec = TASKS[task]
    config = spec.config
    options = None
    if config.protocol == "mc":
        names = config.vocabulary.names
        options = [names[c] for c in spec.options(normalize_image_id(doc["image_id"], task))]
    kwargs = kwargs or {}
    question = kwargs.get("pre_prompt", "") + question_prompt(config, options) + kwargs.get("post_prompt", "")
    return prefix_prompt(config), question


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None, *, task: str) -> str:
    """Plain-text prompt for simple (non-chat) models, which place the image themselves."""
    prefix, question = _prompt_parts(doc, lmms_eval_specific_kwargs, task)
    return _with_prefix(prefix, question) if prefix else question


@functools.lru_cache(maxsize=16)
def _with_prefix(prefix: str, question: str) -> str:
    """The closed-world prompt, identical for every image: one string, not 50,000 copies of 12 KB."""
    return f"{prefix}\n{question}"


def doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None, *, task: str) -> list[dict]:
    """Chat prompt: the shared class list first, then the image, then the per-image question."""
    prefix, question = _prompt_parts(doc, lmms_eval_specific_kwargs, task)
    content = [{"type": "text", "text": prefix}] if prefix else []
    content += [{"type": "image", "url": TASKS[task].load_image(doc)}, {"type": "text", "text": question}]
    return [{"role": "user", "content": content}]


class AnswerFilter(Filter):
    """Makes every answer valid text and maps this process's free-text answers in one batch.

    lmms-eval hands filters the answers without their documents, so reading an answer against its image
    happens in `process_results`; this filter only prepares what does not depend on the image. An answer
    with invalid UTF-16 surrogates is repaired in place (U+FFFD), as lmms-eval could not write it to the
    samples file otherwise; everything else passes through unchanged.
    """

    def __init__(self, task: str) -> None:
        self.task = task

    def apply(self, resps: list[list[str | None]], docs: object) -> list[list[str | None]]:
        repaired = 0
        for answers in resps:
            for index, answer in enumerate(answers):
                if isinstance(answer, str) and (text := valid_text(answer)) is not answer:
                    answers[index] = text
                    repaired += 1
        if repaired:
            logger.warning(f"{self.task}: {repaired} answers held invalid UTF-16 surrogates, replaced by U+FFFD")
        TASKS[self.task].prefetch([answer for answers in resps for answer in answers])
        return resps


def process_results(doc: dict, results: list[str], *, task: str) -> dict[str, Any]:
    """Read one answer; return the image's 0/1 headline values and its record (under `images`)."""
    spec = TASKS[task]
    image_id = normalize_image_id(doc["image_id"], task)
    raw = results[0] if results else ""
    reading = spec.read(raw, image_id)
    labels = spec.image(image_id)
    options = spec.options(image_id) if spec.config.protocol == "mc" else None
    verdict = judge(labels, reading.classes, spec.config.equivalence_set)
    values: dict[str, Any] = {
        "imgt_A": int(verdict.imgt),
        f"{spec.labels.label_set}_A": int(verdict.labels),
        "im_and_re_A": int(verdict.imgt and verdict.labels),
        "unanswered": int(reading.outcome == "unanswered"),
        "truncated": int(reading.outcome == "truncated"),
        "failed": int(reading.outcome == "failed"),
    }
    if spec.config.protocol != "ow":
        values["oop_A"] = int(reading.out_of_prompt)
    values[RECORD_KEY] = make_record(task, spec.config.protocol, labels, raw, reading, options)
    return values


def aggregate_images(records: list[dict]) -> int:
    """Score all of a task's records (rank 0): keep the full report, log its breakdown, return the count."""
    records = unique_records(records, "lmms-eval samples")
    spec = TASKS[records[0]["task"]]
    scored = score_records(records, spec.config, ground_truth=spec.labels)
    report = {
        "task": spec.name,
        "protocol": spec.config.protocol,
        **spec.recorded(),
        **scored,
        "model": spec.model,
        "model_info": describe_models(),
        "world_size": _world_size(),
        "versions": versions(),
    }
    REPORTS[spec.name] = report
    _log_report(spec, report)
    return report["images"]["scored"]


def _log_report(spec: TaskSpec, report: dict) -> None:
    labels, images = report["labels"], report["images"]
    title = (
        f"{spec.name}: {images['scored']} of the {labels['images']} images of label set {labels['set']!r} "
        f"(sha256 {labels['sha256'][:12]}), protocol {spec.config.protocol}"
    )
    table = breakdown_table(report["metrics"], labels["set"], spec.config.protocol, report["intervals"])
    logger.info(f"{title}\n{table}")
    failed = report["outcomes"]["A"].get("failed", 0)
    if failed:
        logger.warning(
            f"{spec.name}: {failed} of {images['scored']} requests failed (the backend returned an error or "
            "nothing); they are scored wrong, and `imagenet-regt submit` refuses this run without --allow-failed"
        )


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
