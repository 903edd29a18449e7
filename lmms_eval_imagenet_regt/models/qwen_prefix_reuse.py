"""lmms-eval's Qwen3-VL and Qwen2.5-VL chat classes, with the shared class list prefilled once per process.

`--model qwen3_vl_prefix` / `qwen2_5_vl_prefix` take the same model arguments as `qwen3_vl` /
`qwen2_5_vl` plus `min_prefix_tokens`; `batch_size` is the number of suffixes (image + question) prefilled
together on top of the cached class list. Prompts, processing and decoding are lmms-eval's own code: only
the model's `generate` is replaced (see `prefix_reuse.SharedPrefixGenerate`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from accelerate import Accelerator
from lmms_eval.models.chat.qwen2_5_vl import Qwen2_5_VL
from lmms_eval.models.chat.qwen3_vl import Qwen3_VL

from ..lmms.run_facts import record_model_facts
from .prefix_reuse import SharedPrefixGenerate


class _OneProcessAccelerator(Accelerator):
    """An accelerator that reports one process (see `_cpu_processes`)."""

    @property
    def num_processes(self) -> int:
        return 1


@contextmanager
def _cpu_processes(module_name: str, device: str | None) -> Iterator[None]:
    """Let several CPU processes load the model.

    lmms-eval's Qwen classes put process i on `cuda:i` whenever there are several processes; with
    `device=cpu` each process instead keeps its own copy on the CPU (the shard comes from rank and world
    size, set after loading). GPU runs are untouched.
    """
    module = sys.modules[module_name]
    if Accelerator().num_processes == 1 or not str(device).startswith("cpu"):
        yield
        return
    original, module.Accelerator = module.Accelerator, _OneProcessAccelerator
    try:
        yield
    finally:
        module.Accelerator = original


class _PrefixReuse:
    """Mixin over an lmms-eval Qwen chat class: its model's `generate` reuses the class list's KV cache."""

    #: The lmms-eval module whose `__init__` loads the model (see `_cpu_processes`).
    _loader_module: str

    def __init__(self, min_prefix_tokens: int | str = 128, **kwargs) -> None:
        with _cpu_processes(self._loader_module, kwargs.get("device")):
            super().__init__(**kwargs)
        accelerator = Accelerator()
        self.accelerator = accelerator
        self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self._shared_prefix = SharedPrefixGenerate(super().model, int(min_prefix_tokens))
        record_model_facts(
            model=type(self).__name__,
            weights=kwargs.get("pretrained"),
            prefix_reuse=f"on (min_prefix_tokens={min_prefix_tokens}, batch_size={self.batch_size})",
        )

    @property
    def model(self):
        shared = self.__dict__.get("_shared_prefix")
        return super().model if shared is None else shared

    def generate_until(self, requests):
        try:
            return super().generate_until(requests)
        finally:
            self._shared_prefix.release()


class Qwen3VLPrefixReuse(_PrefixReuse, Qwen3_VL):
    """`qwen3_vl` (chat) with the class list prefilled once per process."""

    _loader_module = "lmms_eval.models.simple.qwen3_vl"


class Qwen2_5VLPrefixReuse(_PrefixReuse, Qwen2_5_VL):
    """`qwen2_5_vl` (chat) with the class list prefilled once per process."""

    _loader_module = "lmms_eval.models.simple.qwen2_5_vl"
