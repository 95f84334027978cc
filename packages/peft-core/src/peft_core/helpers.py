"""Small helpers of Hugging Face PEFT's public API: scale adapters temporarily, mixed-precision casting,
checking whether a path holds an adapter, and a sequence-to-sequence label shift."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch
from torch import nn

from .tuners.layer import BaseTunerLayer


@contextlib.contextmanager
def rescale_adapter_scale(model: nn.Module, multiplier: float) -> Iterator[None]:
    """Multiply every adapter layer's per-adapter `scaling` by `multiplier` inside the block (restored after,
    even on error). Works for methods whose layers keep a `scaling` dict (LoRA and its relatives)."""
    if isinstance(multiplier, bool) or not isinstance(multiplier, (float, int)):
        raise TypeError(f"multiplier must be a float or int, got {type(multiplier).__name__}.")
    saved: dict[nn.Module, dict[str, float]] = {}
    for module in model.modules():
        scaling = getattr(module, "scaling", None) if isinstance(module, BaseTunerLayer) else None
        if isinstance(scaling, dict):
            saved[module] = dict(scaling)
            for key in scaling:
                scaling[key] = scaling[key] * multiplier
    if not saved:
        raise ValueError(
            "rescale_adapter_scale found no adapter layer with a per-adapter `scaling` (LoRA-style layers have one); "
            "the model's adapters can't be rescaled this way."
        )
    try:
        yield
    finally:
        for module, scaling in saved.items():
            module.scaling.clear()
            module.scaling.update(scaling)


def cast_mixed_precision_params(model: nn.Module, dtype: torch.dtype) -> None:
    """For mixed-precision training: frozen parameters to `dtype` (fp16/bf16), trainable ones to fp32."""
    for param in model.parameters():
        param.data = param.data.to(dtype if not param.requires_grad else torch.float32)


def check_if_peft_model(model_name_or_path: str | os.PathLike, **hub_kwargs: Any) -> bool:
    """Whether `model_name_or_path` (a folder or Hub repo) holds an `adapter_config.json` that loads."""
    from .config import PeftConfig
    from .errors import PeftError

    try:
        PeftConfig.from_pretrained(model_name_or_path, **hub_kwargs)
    except (PeftError, OSError, ValueError):
        return False
    return True


def shift_tokens_right(input_ids: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs from labels: shift right by one, start with `decoder_start_token_id`, -100 -> pad."""
    if pad_token_id is None:
        raise ValueError("shift_tokens_right needs pad_token_id (the model config's pad_token_id).")
    shifted = input_ids.new_zeros(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def get_submodules(model: nn.Module, key: str) -> tuple[nn.Module, nn.Module, str]:
    """(parent, module, attribute name) of the submodule called `key`."""
    parent_key, _, name = key.rpartition(".")
    parent = model.get_submodule(parent_key) if parent_key else model
    return parent, model.get_submodule(key), name
