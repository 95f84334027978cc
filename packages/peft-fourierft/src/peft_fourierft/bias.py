"""The `bias` modes (HF's generic rule): which base-model biases an adapter trains and saves.

- "none": none;
- "all": every bias of the base model (outside adapter containers and modules_to_save copies);
- "<method>_only" (e.g. "fourier_only"): the biases of the targeted layers, saved as
  `<target>.base_layer.bias` like HF.
Only one adapter per model may use a bias mode, as in HF.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from peft_core import BaseTunerLayer, ModulesToSaveWrapper


def bias_names(model: nn.Module, mode: str, layer_cls: type) -> list[str]:
    """Names (in `model`) of the base-model biases covered by `mode`."""
    if mode == "none":
        return []
    if mode.endswith("_only"):
        return [
            f"{key}.base_layer.bias" if key else "base_layer.bias"
            for key, module in model.named_modules()
            if isinstance(module, layer_cls) and getattr(module.get_base_layer(), "bias", None) is not None
        ]
    skip = tuple(_adapter_owned_prefixes(model))
    return [
        key
        for key, _ in model.named_parameters()
        if (key == "bias" or key.endswith(".bias")) and not key.startswith(skip)
    ]


def _adapter_owned_prefixes(model: nn.Module) -> Iterator[str]:
    for key, module in model.named_modules():
        dot = f"{key}." if key else ""
        if isinstance(module, BaseTunerLayer):
            for attr in (*module.adapter_layer_names, *module.other_param_names):
                yield f"{dot}{attr}."
        elif isinstance(module, ModulesToSaveWrapper):
            yield f"{dot}modules_to_save."
            yield f"{dot}original_module."


def check_single_bias_adapter(configs: dict, tuner_name: str) -> None:
    with_bias = [name for name, c in configs.items() if getattr(c, "bias", "none") != "none"]
    if len(with_bias) > 1:
        raise ValueError(
            f"{tuner_name} supports only 1 adapter with bias (adapters {with_bias} set it). When using multiple "
            f"adapters, set bias to 'none' for all adapters but one."
        )


def mark_biases_trainable(model: nn.Module, names: list[str]) -> None:
    wanted = set(names)
    for key, param in model.named_parameters():
        if key in wanted:
            param.requires_grad_(True)


def bias_tensors(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {key: params[key] for key in names if key in params}
