"""`--model imagenet_regt_replay`: answers each image from a file of recorded answers.

For answers produced outside lmms-eval (a batch API job, another harness) that should be scored by exactly
the same protocol code, and for tests that need scripted answers. Model arguments:
`answers=PATH` (JSONL lines `{"image_id": ..., "answer": "..."}`), `batch_size`.
"""

from __future__ import annotations

import json

from accelerate import Accelerator
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from ..errors import InputError
from ..ground_truth import normalize_image_id


class ReplayAnswers(lmms):
    is_simple = True

    def __init__(self, answers: str, batch_size: int | str = 1, **kwargs) -> None:
        super().__init__()
        accelerator = Accelerator()
        self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self._device = accelerator.device
        self.batch_size_per_gpu = int(batch_size)
        self.answers: dict[str, str] = {}
        with open(answers, encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                if text.strip():
                    row = json.loads(text)
                    self.answers[normalize_image_id(row["image_id"], answers, line)] = str(row["answer"])

    @property
    def device(self):
        return self._device

    def generate_until(self, requests: list[Instance]) -> list[str]:
        responses = []
        for start in range(0, len(requests), self.batch_size_per_gpu):
            for request in requests[start : start + self.batch_size_per_gpu]:
                _context, _gen_kwargs, doc_to_visual, doc_id, task, split = request.args
                doc = self.task_dict[task][split][doc_id]
                doc_to_visual(doc)  # decode the image as a real model would
                image_id = normalize_image_id(doc["image_id"], "dataset row")
                if image_id not in self.answers:
                    raise InputError(image_id, "no recorded answer for this image in the answers file")
                responses.append(self.answers[image_id])
        return responses

    def loglikelihood(self, requests):
        raise NotImplementedError("the ImageNet tasks only generate")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("the ImageNet tasks are single-round")
