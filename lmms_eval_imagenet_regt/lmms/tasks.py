"""What each task of a run is: its protocol settings, its validated labels, and per-image state.

A `TaskSpec` is built once per task and process, before the model loads (see `plugin.prepare_task`), and
looked up by task name by every hook: settings reach the answer parsing as data, and tasks in one call
never share anything keyed only by image or answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..errors import InputError
from ..images import ImageSource, load
from ..labels.ground_truth import GroundTruth, ImageLabels, normalize_image_id
from ..protocol.answers import Reading, read_answer
from ..protocol.mapping import Mapped, get_encoder, map_answers
from ..protocol.options import confusions_path, confusions_source, load_confusions, sample_options
from ..protocol.prompts import prompt_hash
from ..protocol.settings import ProtocolConfig

#: lmms-eval model names that call a remote API: there an empty or missing response is a failed request.
API_MODELS = frozenset(
    {
        "openai",
        "openai_compatible",
        "openai_compatible_chat",
        "async_openai",
        "gemini",
        "claude",
        "litellm",
        "gpt4v",
        "batch_gpt4",
        "generation_api",
    }
)
#: This plugin's classifiers (baselines): their answer is the index of their top class, read as such.
CLASSIFIER_MODELS = frozenset({"timm_classifier", "openclip_zeroshot"})
#: Package versions recorded with every result.
PACKAGES = ("lmms-eval-imagenet-regt", "lmms-eval", "transformers", "torch", "sentence-transformers", "datasets")


@dataclass
class TaskSpec:
    name: str
    config: ProtocolConfig
    #: the task's label set: the rows it scores (validated when the spec was built)
    labels: GroundTruth
    #: how those labels were found (a folder, a file or a Hub id), recorded for re-scoring
    label_source: str
    #: the images, read lazily by id (None when a joined dataset carries them in its rows)
    images: ImageSource | None = None
    #: what the results record about the images: where they were found, how many, which were skipped
    image_source: dict = field(default_factory=dict)
    model: str | None = None
    #: an empty response is a failed request (API backends), not an unanswered image
    empty_is_failure: bool = False
    #: the model answers with a class index (this plugin's classifiers), not a name
    answers_are_classes: bool = False
    pre_prompt: str = ""
    post_prompt: str = ""
    _options: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _mapped: dict[str, Mapped] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def identity(self) -> tuple:
        """What makes two specs of one task the same (their caches may then be shared)."""
        labels = (self.label_source, self.labels.sha256, self.image_source.get("location"))
        return (
            self.config,
            labels,
            self.model,
            self.empty_is_failure,
            self.answers_are_classes,
            self.pre_prompt,
            self.post_prompt,
        )

    @property
    def prompt_hash(self) -> str:
        return prompt_hash(self.config, self.pre_prompt, self.post_prompt)

    def image(self, image_id: str) -> ImageLabels:
        if image_id not in self.labels:
            raise InputError(self.label_source, f"task {self.name}: no labels for this image", value=image_id)
        return self.labels[image_id]

    def load_image(self, doc: dict):
        """The document's image as RGB: from its row (a joined dataset), or read by id from the source."""
        if "image" in doc:
            return doc["image"].convert("RGB")
        return load(self.images, normalize_image_id(doc["image_id"], self.name))

    def options(self, image_id: str) -> list[int]:
        """An image's MC options, sampled once per process (prompt and parse use the same list)."""
        if image_id not in self._options:
            config = self.config
            options = sample_options(
                self.image(image_id), config.option_set, config.num_options, config.seed, config.equivalence_set
            )
            self._options[image_id] = options
        return self._options[image_id]

    def read(self, raw: str | None, image_id: str) -> Reading:
        """The answer read by the task's rule, with its mapped class when the protocol maps answers."""
        options = self.options(image_id) if self.config.protocol == "mc" else None
        reading = read_answer(raw, self.config, options, **self._reading)
        if reading.needs_mapping:
            with self._lock:
                if reading.cleaned not in self._mapped:
                    self._map([reading.cleaned])
                hit = self._mapped[reading.cleaned]
            reading = reading.with_mapping(hit.class_index, hit.similarity)
        return reading

    def prefetch(self, answers: list[str | None]) -> None:
        """Map all answers that need it in one batch (the filter calls this with a rank's answers)."""
        if not self.config.maps_answers or self.answers_are_classes:
            return
        texts = []
        for raw in answers:
            reading = read_answer(raw, self.config, **self._reading)
            if reading.needs_mapping and reading.cleaned not in self._mapped:
                texts.append(reading.cleaned)
        with self._lock:
            self._map(texts)

    @property
    def _reading(self) -> dict:
        return {"empty_is_failure": self.empty_is_failure, "class_indices": self.answers_are_classes}

    def _map(self, texts: list[str]) -> None:
        if texts:
            config = self.config
            self._mapped.update(map_answers(texts, config.encoder, config.vocabulary, config.templates))

    def check(self) -> None:
        """Load what the task will need, so a bad setting fails now and not after the model loaded."""
        config = self.config
        config.vocabulary  # noqa: B018  (loads and checks the name set)
        config.equivalence_set  # noqa: B018
        if self.uses_confusions:
            load_confusions(confusions_path())
        if config.maps_answers and not self.answers_are_classes:
            get_encoder(config.encoder)

    def recorded(self) -> dict[str, Any]:
        """What the results record about the task before any answer: settings, labels, prompt, model."""
        return {
            "settings": self.config.to_dict(),
            "labels": {
                "set": self.labels.label_set,
                "source": self.label_source,
                "sha256": self.labels.set_sha256,
                "images": self.labels.set_size,
                "rows": len(self.labels),
            },
            "image_source": self.image_source,
            "prompt_hash": self.prompt_hash,
            "failed_on_empty_response": self.empty_is_failure,
            "answers_are_class_indices": self.answers_are_classes,
            **({"confusions": confusions_source()} if self.uses_confusions else {}),
        }

    @property
    def uses_confusions(self) -> bool:
        return self.config.protocol == "mc" and self.config.option_set.endswith("conf")


def versions() -> dict[str, str]:
    return {package: metadata.version(package) for package in PACKAGES}


#: The tasks of this process's run, by name.
TASKS: dict[str, TaskSpec] = {}
