"""Activated LoRA (aLoRA, `alora_invocation_tokens`): the adapter acts only from its invocation onward.

A sequence's tokens before the last occurrence of the invocation token sequence are computed by the
base model alone, so their KV cache can be shared with the base model; the invocation tokens and
everything after get `s·B(A(x))` as in LoRA. Hugging Face PEFT 0.21.2's semantics:

- the offset of a row is `seq_len − start` of the last occurrence of the invocation tokens in its
  `input_ids` (None when absent: the row uses the base model); it is computed once per `forward` /
  `generate` call (during generation every new token is after the invocation);
- in a layer, the last `min(offset, T)` positions of a row (T = its tokens in this call) are adapted;
- only `nn.Linear` (and GPT-2 `Conv1D`) layers, no DoRA, no merging; callers may pass `alora_offsets=[...]`.

`activation_offsets` sets the offsets for the duration of a call (a context variable the layers read).
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from typing import Any, Iterator, Mapping, Sequence

import torch
from peft_core.errors import ConfigError
from peft_core.tuners.mixed_batch import BASE_ADAPTER_NAME

from . import LoraVariant

_OFFSETS: contextvars.ContextVar[list[int | None] | None] = contextvars.ContextVar("alora_offsets", default=None)


class ALoraVariant(LoraVariant):
    merge_refusal = "aLoRA adapters act on part of each sequence only, so they can't be merged into the weights"
    option, label, linear_targets = "alora_invocation_tokens", "aLoRA", "nn.Linear / Conv1D layers"

    @classmethod
    def for_layer(cls, config: Any, layer: Any) -> LoraVariant:
        variant = super().for_layer(config, layer)
        if config.use_dora:
            raise ConfigError("aLoRA (alora_invocation_tokens) can't be combined with DoRA; set use_dora=False.")
        return variant

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        offsets = _OFFSETS.get()
        if offsets is not None and rows is not None:
            offsets = [offsets[i] for i in rows]
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        dropout, scaling = layer.lora_dropout[name], layer.scaling[name]
        x = layer._cast_input(x, lora_a.weight)
        batch = result.shape[0]
        tokens = result.shape[1] if result.dim() == 3 else 1
        if offsets is None:  # no invocation information: the base model only
            mask = torch.zeros((batch, tokens), dtype=torch.bool, device=result.device)
        else:
            lengths = torch.tensor(
                [0 if o is None else min(int(o), tokens) for o in offsets], device=result.device, dtype=torch.long
            )
            positions = torch.arange(tokens, device=result.device).unsqueeze(0)
            mask = positions >= (tokens - lengths).unsqueeze(1)
        x_flat = x.reshape(-1, x.shape[-1])
        flat = result.view(-1, result.shape[-1])
        selected = mask.view(-1)
        flat[selected] += lora_b(lora_a(dropout(x_flat[selected]))) * scaling
        return result


def invocation_offsets(
    input_ids: torch.Tensor, tokens_by_row: Sequence[Sequence[int] | None]
) -> list[int | None]:
    """Per row, `len − start` of the last occurrence of its invocation tokens (None: absent or no aLoRA)."""
    offsets: list[int | None] = []
    for row, tokens in zip(input_ids, tokens_by_row):
        if not tokens:
            offsets.append(None)
            continue
        pattern = torch.tensor(list(tokens), dtype=row.dtype, device=row.device)
        length, size = row.shape[0], pattern.shape[0]
        best = -1
        for start in (row == pattern[0]).nonzero(as_tuple=True)[0].tolist():
            if start + size <= length and torch.equal(row[start : start + size], pattern):
                best = max(best, start)
        offsets.append(length - best if best != -1 and length - best > 0 else None)
    return offsets


def _relevant(configs: Mapping[str, Any], active: str, adapter_names: Sequence[str] | None) -> bool:
    if getattr(configs.get(active), "alora_invocation_tokens", None):
        return True
    return any(
        getattr(configs.get(n), "alora_invocation_tokens", None) for n in adapter_names or () if n != BASE_ADAPTER_NAME
    )


@contextlib.contextmanager
def activation_offsets(
    configs: Mapping[str, Any],
    active: str,
    args: tuple,
    kwargs: dict,
    adapter_names: Sequence[str] | None = None,
) -> Iterator[None]:
    """Compute (or take `kwargs["alora_offsets"]`) the rows' offsets for one call; pops the kwarg."""
    given = kwargs.pop("alora_offsets", None)
    if not _relevant(configs, active, adapter_names):
        yield
        return
    offsets = given
    if offsets is None:
        input_ids = kwargs.get("input_ids")
        if input_ids is None and args and torch.is_tensor(args[0]):
            input_ids = args[0]
        if input_ids is None:
            warnings.warn(
                "aLoRA: no input_ids (only inputs_embeds?), so the invocation tokens can't be found; the adapter is "
                "not applied in this call.",
                UserWarning,
                stacklevel=4,
            )
        else:
            if input_ids.dim() == 1:
                input_ids = input_ids.unsqueeze(0)
            names = list(adapter_names) if adapter_names else [active] * input_ids.shape[0]
            tokens = [
                None if n == BASE_ADAPTER_NAME or n not in configs else configs[n].alora_invocation_tokens
                for n in names
            ]
            offsets = invocation_offsets(input_ids, tokens)
    token = _OFFSETS.set(None if offsets is None else list(offsets))
    try:
        yield
    finally:
        _OFFSETS.reset(token)
