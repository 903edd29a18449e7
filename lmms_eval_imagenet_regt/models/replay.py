"""`--model imagenet_regt_replay`: answers each image from a file of recorded answers.

For answers produced outside lmms-eval (a batch API job, another harness) that should be scored by exactly
the same protocol code, and for tests that need scripted answers. Model arguments:
`answers=PATH` (JSONL lines `{"image_id": ..., "answer": "..."}`; one line per image, the answer a
string), `batch_size`.
"""

from __future__ import annotations

from pathlib import Path

from lmms_eval.api.instance import Instance

from ..errors import InputError
from ..files import iter_jsonl
from ..labels.ground_truth import normalize_image_id
from .local_model import LocalModel


def read_answers(path: str | Path) -> dict[str, str]:
    """{image id: answer} from a file of recorded answers: one line per image, the answer a string."""
    answers: dict[str, str] = {}
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict) or "image_id" not in row or "answer" not in row:
            raise InputError(path, "a line needs 'image_id' and 'answer'", line=line, value=row)
        image_id = normalize_image_id(row["image_id"], path, line=line)
        if image_id in answers:
            raise InputError(path, "duplicate image id", line=line, value=image_id)
        if not isinstance(row["answer"], str):
            raise InputError(path, "'answer' must be a string (the model's text)", line=line, value=row["answer"])
        answers[image_id] = row["answer"]
    if not answers:
        raise InputError(path, "no answers in the file")
    return answers


class ReplayAnswers(LocalModel):
    def __init__(self, answers: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.answers = read_answers(answers)

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
