"""Shared base of the baseline classifiers: batches of images in, one class index per image out.

The answer is the index of the top class, as text ("657"): the tasks read a classifier's answer as that
index (never as a name, which two classes may share: "missile" is 657 and 744), so a prediction is scored
on exactly the class the model chose. Several processes work as for any lmms-eval model: each rank takes
its shard on its own device.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lmms_eval.api.instance import Instance

from ..labels.ground_truth import normalize_image_id
from .local_model import LocalModel


class ImageClassifierModel(LocalModel):
    def __init__(self, batch_size: int | str = 32, top5_path: str | None = None, **kwargs) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        self._top5 = top5_path
        self._top5_started = False
        if top5_path:
            Path(top5_path).parent.mkdir(parents=True, exist_ok=True)

    @property
    def top5_path(self) -> Path | None:
        """One file per process (`<path>.rank<k>` on several), so ranks never interleave their lines. Read
        when writing: lmms-eval sets the rank after the model is built, so it is not known in __init__."""
        if not self._top5:
            return None
        return Path(f"{self._top5}.rank{self._rank}" if self._world_size > 1 else self._top5)

    def logits(self, images: list) -> torch.Tensor:
        """Batch of PIL images → (batch, 1000) class scores."""
        raise NotImplementedError

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers: list[str] = []
        for start in range(0, len(requests), self.batch_size_per_gpu):
            docs = []
            for request in requests[start : start + self.batch_size_per_gpu]:
                _context, _gen_kwargs, doc_to_visual, doc_id, task, split = request.args
                doc = self.task_dict[task][split][doc_id]
                docs.append((doc, doc_to_visual(doc)[0]))
            with torch.inference_mode():
                scores = self.logits([image for _, image in docs]).float()
            top = scores.topk(5, dim=1)
            answers += [str(int(row[0])) for row in top.indices]
            if self.top5_path:
                # this run's file: started afresh, never appended to an earlier run's
                with open(self.top5_path, "a" if self._top5_started else "w", encoding="utf-8") as handle:
                    for (doc, _), indices, values in zip(docs, top.indices.tolist(), top.values.tolist(), strict=True):
                        record = {"image_id": normalize_image_id(doc["image_id"]), "top5": indices, "scores": values}
                        handle.write(json.dumps(record) + "\n")
                self._top5_started = True
        return answers
