"""`--model openclip_zeroshot`: any open_clip model as a zero-shot ImageNet classifier.

Model arguments: `model` (open_clip architecture, e.g. ViT-SO400M-14-SigLIP-384), `pretrained` (a tag such
as `webli`, or a local checkpoint file), `names` (the class names embedded: `clean`, the default, `openai`,
`wordnet` or a file), `templates` (`openai` = open_clip's 80 ImageNet templates, `simple` = its 7, `one`, or
templates joined by `|`), `batch_size`, `top5_path` (write each image's top-5 classes and scores as JSONL,
one file per process).

The class matrix is the one the text-embedding mapping builds (`mapping.class_matrix`, cached on disk),
from the same model instance that then embeds the images: one matrix product per batch.
"""

from __future__ import annotations

import torch

from ..labels.vocabulary import DEFAULT_NAME_SET, ClassVocabulary
from ..lmms.run_facts import record_model_facts
from ..protocol.mapping import TEMPLATE_SETS, class_matrix, get_encoder, template_texts
from .image_classifier import ImageClassifierModel


class OpenClipZeroShot(ImageClassifierModel):
    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        names: str = DEFAULT_NAME_SET,
        templates: str = "openai",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary = ClassVocabulary.load(names)
        self.encoder_name = f"open_clip:{model}:{pretrained}" if pretrained else f"open_clip:{model}"
        # a named set, or templates joined by `|` (model_args are comma-separated)
        self.templates = template_texts(templates if templates in TEMPLATE_SETS else templates.split("|"))
        encoder = get_encoder(self.encoder_name)
        self.model, self.preprocess = encoder.model.to(self.device), encoder.preprocess
        matrix = class_matrix(self.encoder_name, self.vocabulary, self.templates)
        self.classes = torch.from_numpy(matrix).to(self.device)
        record_model_facts(
            model=f"openclip_zeroshot {self.encoder_name}",
            names=self.vocabulary.name_set,
            templates=f"{len(self.templates)} ({templates})",
            preprocessing=" ".join(repr(self.preprocess).split()),
        )

    def logits(self, images: list) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        features = self.model.encode_image(pixels, normalize=True).float()
        return features @ self.classes.T
