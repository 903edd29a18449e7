"""`--model paligemma2`: PaliGemma 2 (transformers' PaliGemma classes), which lmms-eval 0.7.3 lacks.

PaliGemma's prompt convention: the image tokens, BOS, a task prefix and the question, ending in a newline
(the processor inserts image tokens and BOS). The mix checkpoints answer questions after `answer en `, the
prefix used here. The paper runs PaliGemma 2 in open world only: the 1000-name closed-world prompt does
not fit its context. Model arguments: `pretrained` (Hub id or local folder), `prefix` (default
`answer en `), `dtype` (default `auto`), `batch_size`, `device`.
"""

from __future__ import annotations

import torch
from lmms_eval.api.instance import Instance

from ..lmms.run_facts import record_model_facts
from .local_model import LocalModel


class PaliGemma2(LocalModel):
    def __init__(
        self,
        pretrained: str = "google/paligemma2-10b-mix-448",
        prefix: str = "answer en ",
        dtype: str = "auto",
        batch_size: int | str = 1,
        device: str | None = None,
        **kwargs,
    ) -> None:
        from transformers import AutoProcessor, PaliGemmaForConditionalGeneration

        super().__init__(batch_size=batch_size, device=device, **kwargs)
        self.prefix = prefix
        self.model = PaliGemmaForConditionalGeneration.from_pretrained(pretrained, dtype=dtype).to(self._device).eval()
        self.processor = AutoProcessor.from_pretrained(pretrained)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        size = getattr(self.processor.image_processor, "size", None)
        record_model_facts(model=f"paligemma2 {pretrained}", prompt=f"<image><bos>{prefix}QUESTION\\n", image_size=size)

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers: list[str] = []
        image_token = self.processor.image_token
        for start in range(0, len(requests), self.batch_size_per_gpu):
            chunk = requests[start : start + self.batch_size_per_gpu]
            texts, images = [], []
            for request in chunk:
                context, _gen_kwargs, doc_to_visual, doc_id, task, split = request.args
                images.append(doc_to_visual(self.task_dict[task][split][doc_id])[0])
                texts.append(f"{image_token}{self.prefix}{context}\n")
            gen_kwargs = chunk[0].args[1] or {}
            inputs = self.processor(text=texts, images=images, return_tensors="pt", padding="longest")
            inputs.pop("labels", None)
            inputs = inputs.to(self._device)
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            with torch.inference_mode():
                output = self.model.generate(
                    **inputs, max_new_tokens=int(gen_kwargs.get("max_new_tokens", 32)), do_sample=False, num_beams=1
                )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            answers += [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]
        return answers
