"""Closed world at a fraction of the cost: prefill the shared class list once per process.

A closed-world request is ~92% class list (~3,500 tokens of names before a ~300-token image and question),
and lmms-eval's Hugging Face Qwen classes prefill all of it for every image. `SharedPrefixGenerate` stands
in for the model's `generate`: the tokens every request shares before its first image (system prompt,
instructions, class list) are prefilled once into a KV cache; each batch then prefills only its suffixes
(image, question) on top of a copy of that cache. Everything else — prompts, chat template, processor,
decoding — stays lmms-eval's own code, which is why this wraps `generate` rather than `generate_until`.

Layout: rows arrive padded (left for batches); a copy is rearranged to `prefix | padding | suffix`, which
keeps each row's length; the output carries the caller's rows, then the new tokens, as `generate` does. Positions are
guarded: the rotary / M-RoPE positions the model would give the rearranged rows are computed with the
model's own generation code and must equal a full prefill's on every real token, or the batch fails loudly.
"""

from __future__ import annotations

import copy

import torch
from loguru import logger


class SharedPrefixGenerate:
    """A model whose `generate` reuses the KV cache of the prefix its requests share.

    Requests that share fewer than `min_prefix_tokens` tokens before their first image (open world,
    multiple choice: only the system prompt), beam search and `use_cache=False` take the model's plain
    `generate`, with a one-time warning. One prefix cache is held at a time; `release` frees it.
    """

    def __init__(self, model: torch.nn.Module, min_prefix_tokens: int = 128) -> None:
        self.model = model
        self.min_prefix_tokens = int(min_prefix_tokens)
        self.vision_start = int(model.config.vision_start_token_id)
        self.pad_token_id = int(model.config.text_config.pad_token_id or 0)
        self._prefix: torch.Tensor | None = None
        self._cache = None
        self._warned: set[str] = set()
        self.reused = 0  #: rows generated on top of a cached prefix (the tests read it)

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def release(self) -> None:
        """Free the prefix cache (end of a `generate_until` call)."""
        self._prefix = self._cache = None

    # --- generation ----------------------------------------------------------------------------------

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        prefix = self._shared_prefix(input_ids, attention_mask)
        reason = self._unsupported(kwargs) or (
            None
            if prefix is not None
            else f"they share fewer than min_prefix_tokens={self.min_prefix_tokens} tokens before the image"
        )
        if reason:
            self._warn_once(reason)
            return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        ids, mask, per_token = self._rearrange(input_ids, attention_mask, len(prefix), kwargs)
        cache = copy.deepcopy(self._prefix_cache(prefix))
        cache.batch_repeat_interleave(input_ids.shape[0])
        full = {**kwargs, **per_token}
        positions = self._guarded_positions(input_ids, attention_mask, kwargs, ids, mask, full, cache)
        self.reused += input_ids.shape[0]
        out = self.model.generate(
            input_ids=ids, attention_mask=mask, past_key_values=cache, position_ids=positions, **full
        )
        # hand back the caller's own rows in front of the new tokens, as the plain `generate` does
        if torch.is_tensor(out):
            return torch.cat([input_ids, out[:, input_ids.shape[1] :]], dim=1)
        out.sequences = torch.cat([input_ids, out.sequences[:, input_ids.shape[1] :]], dim=1)
        return out

    def _unsupported(self, kwargs: dict) -> str | None:
        if kwargs.get("use_cache") is False:
            return "use_cache=False"
        if int(kwargs.get("num_beams") or 1) > 1:
            return "beam search"
        if "past_key_values" in kwargs or "position_ids" in kwargs:
            return "the caller passes its own cache or positions"
        return None

    def _warn_once(self, reason: str) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            logger.warning(f"prefix reuse off for these requests ({reason}): using the full prefill")

    def _shared_prefix(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """The tokens every row has before its first image, if at least `min_prefix_tokens`, else None.

        The prefix ends on the same token for every row by construction (the vision-start token); rows
        must agree on every token before it, which also rules out a class list tokenised differently.
        """
        prefix = None
        for row, row_mask in zip(input_ids, mask, strict=True):
            tokens = row[row_mask.bool()]
            vision = (tokens == self.vision_start).nonzero().flatten()
            if len(vision) == 0 or vision[0] < self.min_prefix_tokens:
                return None
            head = tokens[: vision[0]]
            if prefix is not None and not torch.equal(prefix, head):
                return None
            prefix = head
        return prefix

    def _rearrange(
        self, input_ids: torch.Tensor, mask: torch.Tensor, length: int, kwargs: dict
    ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Rows as `prefix | padding | suffix`, same width; per-token inputs (token types) moved alike."""
        width = input_ids.shape[1]
        per_token = {
            key: value
            for key, value in kwargs.items()
            if torch.is_tensor(value) and value.shape[:2] == input_ids.shape and key != "pixel_values"
        }
        ids = torch.full_like(input_ids, self.pad_token_id)
        new_mask = torch.zeros_like(mask)
        moved = {key: torch.zeros_like(value) for key, value in per_token.items()}
        for row in range(input_ids.shape[0]):
            real = mask[row].nonzero().flatten()
            to = torch.cat([torch.arange(length), torch.arange(width - len(real) + length, width)]).to(real.device)
            ids[row, to], new_mask[row, to] = input_ids[row, real], 1
            for key, value in per_token.items():
                moved[key][row, to] = value[row, real]
        return ids, new_mask, moved

    def _prefix_cache(self, prefix: torch.Tensor):
        if self._prefix is None or not torch.equal(self._prefix, prefix):
            self.release()
            with torch.inference_mode():
                out = self.model(input_ids=prefix[None].to(self.model.device), use_cache=True, logits_to_keep=1)
            self._prefix, self._cache = prefix, out.past_key_values
            logger.info(f"prefix reuse: cached {len(prefix)} shared prompt tokens")
        return self._cache

    def _guarded_positions(self, input_ids, mask, kwargs, ids, new_mask, full, cache) -> torch.Tensor:
        """The model's positions for the rearranged rows, checked against a full prefill's.

        Both come from the model's own `_prepare_position_ids_for_generation` (the code `generate` runs);
        the rearranged rows see the cache as `generate` will. Every real token must get the position it
        has in the full prefill, and the prefix must sit at 0..P-1, where its cached keys were rotated.
        """
        full_prefill = self.model._prepare_position_ids_for_generation(input_ids, {**kwargs, "attention_mask": mask})
        reused = self.model._prepare_position_ids_for_generation(
            ids, {**full, "attention_mask": new_mask, "past_key_values": cache}
        )
        length = cache.get_seq_length()
        for row in range(ids.shape[0]):
            expected = full_prefill[..., row, mask[row].bool()]
            got = reused[..., row, new_mask[row].bool()]
            at_start = torch.arange(length, device=got.device).expand_as(got[..., :length])
            if not (torch.equal(got[..., :length], at_start) and torch.equal(expected, got)):
                raise RuntimeError(
                    f"prefix reuse: row {row}'s rotary positions differ from a full prefill; "
                    "run the plain model class instead"
                )
        return reused
