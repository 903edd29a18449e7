"""Base of this plugin's model classes: one process per device, generation only."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from lmms_eval.api.model import lmms
from loguru import logger


class LocalModel(lmms):
    """Rank, world size and device from accelerate, so `accelerate launch` shards requests as for any
    lmms-eval model; `device=` overrides the device (e.g. `cpu`)."""

    is_simple = True

    def __init__(self, batch_size: int | str = 1, device: str | None = None, **unknown) -> None:
        super().__init__()
        accelerator = Accelerator()
        self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self._device = torch.device(device) if device else accelerator.device
        self.batch_size_per_gpu = int(batch_size)
        if unknown:
            logger.warning(f"{type(self).__name__}: ignoring unknown model arguments {sorted(unknown)}")

    @property
    def device(self) -> torch.device:
        return self._device

    def loglikelihood(self, requests):
        raise NotImplementedError("the ImageNet tasks only generate")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("the ImageNet tasks are single-round")
