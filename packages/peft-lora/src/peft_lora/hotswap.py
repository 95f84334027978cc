"""LoRA's part in hotswapping (`peft_core.hotswap`, Hugging Face PEFT's `peft.utils.hotswap`).

- The config fields two LoRA adapters must share to swap: `use_rslora`, `lora_dropout`,
  `alpha_pattern`, `use_dora` (HF's list).
- A new adapter's scaling (`lora_alpha / r`, rank and alpha patterns, rsLoRA) replaces the old one's:
  a float is replaced, a tensor (after `prepare_model_for_compiled_hotswap`) is filled in place.
- Compile preparation: scalings become 0-d tensors (the forward then multiplies by them instead of
  branching on their value, so a new value needs no new graph), and with a target rank the factors
  are zero-padded to it (`lora_A` rows, `lora_B` columns; Linear, Conv and Embedding layers).
  Zero rows and columns add nothing: outputs stay the same.
- A layer the new adapter does not target is cleared: A and B zero (a DoRA magnitude goes back to
  the weight norm, its no-op value).
"""

from __future__ import annotations

__all__ = ["LoraHotswap", "is_lora_layer"]

import copy
import math

import torch
from peft_core import PeftConfig, pattern_value
from peft_core.errors import HotswapError
from peft_core.hotswap import HotswapSupport, copy_padded
from torch import nn

from .layers import LoraLayer
from .layers.base import MAGNITUDE
from .layers.conv import _ConvNd


def is_lora_layer(layer: nn.Module) -> bool:
    """A layer LoRA's tuner owns (AdaLoRA's subclasses are not)."""
    return isinstance(layer, LoraLayer) and layer.owner_method == "lora"


class LoraHotswap(HotswapSupport):
    config_keys = ("use_rslora", "lora_dropout", "alpha_pattern", "use_dora")

    def prepare_layer(self, layer: nn.Module, target_rank: int | None) -> bool:
        if not is_lora_layer(layer):
            return False
        device = layer.weight.device
        for name, value in list(layer.scaling.items()):
            if not isinstance(value, torch.Tensor):
                layer.scaling[name] = torch.tensor(float(value), device=device)
        if target_rank is not None:
            for name in list(layer.lora_A):
                layer.lora_A[name] = _padded_factor(layer, layer.lora_A[name], target_rank, is_a=True)
                layer.lora_B[name] = _padded_factor(layer, layer.lora_B[name], target_rank, is_a=False)
            for name in list(layer.lora_embedding_A):
                layer.lora_embedding_A[name] = _padded_parameter(layer.lora_embedding_A[name], target_rank, dim=0)
                layer.lora_embedding_B[name] = _padded_parameter(layer.lora_embedding_B[name], target_rank, dim=1)
        return True

    def prepare_config(self, config: PeftConfig, target_rank: int) -> None:
        config.r = target_rank
        for key in config.rank_pattern or {}:
            config.rank_pattern[key] = target_rank

    def update_settings(self, layer: nn.Module, adapter_name: str, config: PeftConfig, module_key: str) -> None:
        if not is_lora_layer(layer):
            return
        r = pattern_value(config.rank_pattern, module_key, config.r)
        alpha = pattern_value(config.alpha_pattern, module_key, config.lora_alpha)
        scaling = alpha / math.sqrt(r) if config.use_rslora else alpha / r
        current = layer.scaling.get(adapter_name)
        if isinstance(current, torch.Tensor):
            current.fill_(scaling)
        else:
            layer.scaling[adapter_name] = scaling
        layer.r[adapter_name] = r
        layer.lora_alpha[adapter_name] = alpha

    def copy_into(self, layer: nn.Module, saved_key: str, old: torch.Tensor, new: torch.Tensor) -> None:
        groups = layer.get_base_layer().groups if isinstance(layer, _ConvNd) else 1
        if groups > 1 and saved_key.startswith("lora_A.") and old.shape != new.shape:
            old.zero_()
            _copy_grouped_rows(old, new, groups)
            return
        copy_padded(old, new)

    def clear_adapter(self, layer: nn.Module, adapter_name: str) -> None:
        for t in layer.adapter_tensors(adapter_name):
            if not t.saved_key.startswith(MAGNITUDE):
                t.tensor.zero_()
        if is_lora_layer(layer) and adapter_name in layer.lora_magnitude_vector:
            magnitude = layer.lora_magnitude_vector[adapter_name].weight
            magnitude.copy_(layer._initial_magnitude(adapter_name))  # B = 0: the weight norm, DoRA's no-op


def _padded_factor(layer: LoraLayer, module: nn.Module, target_rank: int, is_a: bool) -> nn.Module:
    """A copy of `lora_A` / `lora_B` (Linear or Conv) whose rank dimension is zero-padded to `target_rank`."""
    weight = module.weight
    groups = layer.get_base_layer().groups if isinstance(layer, _ConvNd) else 1
    rank = weight.shape[0] if is_a else weight.shape[1] * (groups if not is_a else 1)
    if rank == target_rank:
        return module
    if rank > target_rank:
        raise HotswapError(
            f"Can't pad the LoRA factors to target_rank={target_rank}: an adapter already has rank {rank}. Pass the "
            f"largest rank of all adapters you will swap in."
        )
    if groups > 1 and target_rank % groups:
        raise HotswapError(
            f"target_rank={target_rank} is not divisible by the groups ({groups}) of a grouped convolution LoRA; choose "
            f"a multiple of {groups}."
        )
    padded_module = copy.deepcopy(module)
    with torch.no_grad():
        if is_a:
            padded = weight.new_zeros((target_rank, *weight.shape[1:]))
            if groups > 1:
                _copy_grouped_rows(padded, weight, groups)
            else:
                padded[:rank] = weight
        else:
            padded = weight.new_zeros((weight.shape[0], target_rank // groups, *weight.shape[2:]))
            padded[:, : weight.shape[1]] = weight
    padded_module.weight = nn.Parameter(padded, requires_grad=weight.requires_grad)
    if isinstance(module, nn.Linear):
        if is_a:
            padded_module.out_features = target_rank
        else:
            padded_module.in_features = target_rank
    elif is_a:
        padded_module.out_channels = target_rank
    else:
        padded_module.in_channels = target_rank
    return padded_module


def _padded_parameter(param: nn.Parameter, target_rank: int, dim: int) -> nn.Parameter:
    rank = param.shape[dim]
    if rank == target_rank:
        return param
    if rank > target_rank:
        raise HotswapError(f"Can't pad a LoRA embedding of rank {rank} to target_rank={target_rank}; pass the largest rank.")
    shape = list(param.shape)
    shape[dim] = target_rank
    padded = param.data.new_zeros(shape)
    padded.narrow(dim, 0, rank).copy_(param.data)
    return nn.Parameter(padded, requires_grad=param.requires_grad)


def _copy_grouped_rows(destination: torch.Tensor, source: torch.Tensor, groups: int) -> None:
    """Copy a grouped conv's `lora_A` rows group by group (each group's block keeps its place when padded)."""
    dest_per_group, src_per_group = destination.shape[0] // groups, source.shape[0] // groups
    for g in range(groups):
        destination[g * dest_per_group : g * dest_per_group + src_per_group].copy_(
            source[g * src_per_group : (g + 1) * src_per_group]
        )

