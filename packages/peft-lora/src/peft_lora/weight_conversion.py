"""Saving a PiSSA / OLoRA (or CorDA / LoRA-GA) adapter as a plain LoRA for the original base model.

Those initialisations move part of `W` into the adapter: the model trains on `W_res = W − s·B₀A₀`
with `A₀, B₀` the initial factors. After training the model computes `W_res + s·BA`, which is the
original `W` plus

    ΔW = s·(BA − B₀A₀) = s·[B | −B₀] · [A ; A₀]

i.e. a LoRA of rank `2r` with `A' = cat(A, A₀)` (rows) and `B' = cat(B, −B₀)` (columns), applied to the
unchanged base. `save_pretrained(dir, path_initial_model_for_weight_conversion=init_dir)` writes that
adapter (Hugging Face PEFT's conversion: `r` and every `rank_pattern` value doubled, `lora_alpha` and
`alpha_pattern` doubled, `lora_alpha·√2` with rsLoRA, so the scaling is unchanged; `init_lora_weights`
True), where `init_dir` holds the adapter saved right after initialisation, before training.

Unlike Hugging Face PEFT, the initial adapter folder is only read (HF rewrites its config), embedding
factors are converted too (HF drops them) and tensors other than LoRA factors (modules_to_save copies,
biases) are kept.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch
from peft_core import load_peft_weights
from peft_core.errors import AdapterLoadError, ConfigError

from .config import init_family

_CONVERTIBLE = ("pissa", "olora", "corda", "lora_ga", "default")
_ROW_FACTORS = (".lora_A.weight", ".lora_embedding_A")  # cat along dim 0
_COLUMN_FACTORS = (".lora_B.weight", ".lora_embedding_B")  # cat along dim 1, negated initial values


def convert_to_plain_lora(
    config: Any, state: dict[str, torch.Tensor], initial_adapter_path: str
) -> tuple[Any, dict[str, torch.Tensor]]:
    """(config, state) of the rank-2r LoRA equal to the trained adapter, for the original base weights."""
    if config.use_rslora and (config.rank_pattern or config.alpha_pattern):
        raise ConfigError(
            "path_initial_model_for_weight_conversion is not supported when rank_pattern or alpha_pattern is used "
            "together with use_rslora=True (the doubled rank can't keep every layer's scaling)."
        )
    if config.use_dora:
        raise ConfigError(
            "path_initial_model_for_weight_conversion can't convert a DoRA adapter: its magnitude normalises the whole "
            "weight, so the trained adapter is not a low-rank difference. Save it without conversion."
        )
    if config.target_parameters:
        raise ConfigError(
            "path_initial_model_for_weight_conversion does not support adapters with target_parameters (expert "
            "factors are laid out per expert, so the rank can't be doubled by concatenation)."
        )
    if init_family(config.init_lora_weights) not in _CONVERTIBLE:
        warnings.warn(
            "`path_initial_model_for_weight_conversion` only works for converting a PiSSA/CorDA/OLoRA/LoRA-GA adapter "
            "to a LoRA adapter",
            UserWarning,
            stacklevel=4,
        )
    initial = load_peft_weights(initial_adapter_path)
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        row = key.endswith(_ROW_FACTORS)
        column = key.endswith(_COLUMN_FACTORS)
        if not (row or column):
            converted[key] = tensor
            continue
        start = initial.get(key)
        if start is None:
            raise AdapterLoadError(
                f"The initial adapter in {initial_adapter_path!r} has no {key!r}; it must be the same adapter saved "
                f"right after initialisation (before training), with the same targets and ranks."
            )
        start = start.to(device=tensor.device, dtype=tensor.dtype)
        dim = 0 if row else 1
        expected = list(tensor.shape)
        if list(start.shape) != expected:
            raise AdapterLoadError(
                f"The initial adapter's {key!r} has shape {tuple(start.shape)}, the trained one {tuple(tensor.shape)}; "
                f"{initial_adapter_path!r} is not this adapter's initial state."
            )
        converted[key] = torch.cat([tensor, start if row else -start], dim=dim)
    config = copy.deepcopy(config)
    config.init_lora_weights = True
    config.r *= 2
    config.lora_alpha = config.lora_alpha * math.sqrt(2) if config.use_rslora else config.lora_alpha * 2
    if config.rank_pattern:
        config.rank_pattern = {key: 2 * value for key, value in config.rank_pattern.items()}
    if config.alpha_pattern:
        config.alpha_pattern = {key: 2 * value for key, value in config.alpha_pattern.items()}
    return config, converted
