"""`add_weighted_adapter`: a new adapter made from a weighted combination of existing ones.

Hugging Face PEFT's semantics (combination types and ranks):

- "cat": exact. `A = cat(wᵢ·sᵢ·Aᵢ)`, `B = cat(Bᵢ)`, so `B@A = Σ wᵢ·ΔWᵢ`; rank = Σ rᵢ.
- "svd" (and "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd"): combine the
  full deltas `ΔWᵢ = sᵢ·Bᵢ@Aᵢ`, then keep the top `svd_rank` singular triplets (default: the largest rank).
- "linear" (and "ties", "dare_linear", "dare_ties", "magnitude_prune"): combine the A's and B's
  separately with weights `±√|wᵢ·sᵢ|` (sign on A); an approximation unless there is one adapter.
  All adapters must have the same rank.

The new adapter has `lora_alpha = r` (scaling 1) and is not active; activate it with `set_adapter`.
Deliberate differences from HF: the new adapter never uses rsLoRA (HF keeps `use_rslora`, which
rescales the combined weights by √r), DoRA / lora_bias adapters are refused (HF drops their magnitude
and bias silently), and a `modules_to_save` copy present in exactly one source adapter is carried over
(HF starts the new adapter from the untrained original module).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import warnings
from functools import reduce
from typing import TYPE_CHECKING, Literal, Sequence

import torch
from peft_core import ConfigError, ModulesToSaveWrapper

from .combine import SignMethod, combine
from .layers import Embedding, LoraLayer
from .layers.conv import _ConvNd

if TYPE_CHECKING:
    from .model import LoraModel

LINEAR_TYPES = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")
SVD_TYPES = ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd")
CombinationType = Literal[
    "svd",
    "linear",
    "cat",
    "ties",
    "ties_svd",
    "dare_ties",
    "dare_linear",
    "dare_ties_svd",
    "dare_linear_svd",
    "magnitude_prune",
    "magnitude_prune_svd",
]


def add_weighted_adapter(
    tuner: LoraModel,
    adapters: Sequence[str],
    weights: Sequence[float],
    adapter_name: str,
    combination_type: CombinationType = "svd",
    svd_rank: int | None = None,
    svd_clamp: float | None = None,
    svd_full_matrices: bool = True,
    svd_driver: str | None = None,
    density: float | None = None,
    majority_sign_method: SignMethod = "total",
) -> None:
    """Add `adapter_name` = the weighted combination of `adapters` (see `peft_lora.weighted`).

    `combination_type`: "svd" (default), "linear", "cat", "ties", "ties_svd", "dare_linear", "dare_ties",
    "dare_linear_svd", "dare_ties_svd", "magnitude_prune", "magnitude_prune_svd". `density` is needed by
    the pruning types. The new adapter is inactive: call `set_adapter(adapter_name)`.
    """
    adapters, weights = list(adapters), [float(w) for w in weights]
    for name in adapters:
        if name in tuner.peft_config and tuner.peft_config[name].target_parameters:
            raise ConfigError(
                f"add_weighted_adapter does not support adapters that target parameters (adapter {name!r} uses "
                f"target_parameters)."
            )
    if adapter_name in tuner.peft_config:
        warnings.warn(f"Adapter {adapter_name!r} already exists; add_weighted_adapter did nothing.", stacklevel=2)
        return
    combination_type, new_rank, new_targets = _check(tuner, adapters, weights, combination_type, svd_rank, density)
    source = tuner.peft_config[adapters[0]]
    tuner.peft_config[adapter_name] = dataclasses.replace(
        source,
        r=new_rank,
        lora_alpha=new_rank,
        target_modules=new_targets,
        rank_pattern={},
        alpha_pattern={},
        use_rslora=False,
        init_lora_weights=True,
    )
    try:
        tuner.inject_adapter(tuner.model, adapter_name)
        with torch.no_grad():
            _fill(
                tuner,
                adapters,
                weights,
                adapter_name,
                combination_type,
                new_rank,
                svd_clamp,
                svd_full_matrices,
                svd_driver,
                density,
                majority_sign_method,
            )
    except BaseException:
        _discard(tuner, adapter_name)
        raise


def _discard(tuner: LoraModel, adapter_name: str) -> None:
    tuner.peft_config.pop(adapter_name, None)
    for module in list(tuner.adapter_modules()):
        module.delete_adapter(adapter_name)


def _fill(
    tuner: LoraModel,
    adapters: list[str],
    weights: list[float],
    adapter_name: str,
    combination_type: str,
    new_rank: int,
    svd_clamp: float | None,
    svd_full_matrices: bool,
    svd_driver: str | None,
    density: float | None,
    majority_sign_method: SignMethod,
) -> None:
    for layer in tuner.tuner_layers():
        if not isinstance(layer, LoraLayer) or not layer.has_lora(adapter_name):
            continue
        target_a, target_b = _factors(layer, adapter_name)
        if combination_type == "cat":
            new_a, new_b = _cat(layer, adapters, weights, target_a)
        elif combination_type in SVD_TYPES:
            new_a, new_b = _svd(
                layer, adapters, weights, combination_type, new_rank, target_a, target_b,
                density, majority_sign_method, svd_clamp, svd_full_matrices, svd_driver,
            )  # fmt: skip
        else:
            new_a, new_b = _linear(layer, adapters, weights, combination_type, density, majority_sign_method)
        target_a.zero_()
        target_b.zero_()
        target_a[: new_a.shape[0]] = new_a.to(target_a.dtype)
        target_b[:, : new_b.shape[1]] = new_b.to(target_b.dtype)
    for wrapper in tuner.model.modules():
        if isinstance(wrapper, ModulesToSaveWrapper) and adapter_name in wrapper.modules_to_save:
            sources = [a for a in adapters if a in wrapper.modules_to_save]
            if len(sources) == 1:
                wrapper.modules_to_save[adapter_name].load_state_dict(wrapper.modules_to_save[sources[0]].state_dict())


def _check(
    tuner: LoraModel,
    adapters: list[str],
    weights: list[float],
    combination_type: str,
    svd_rank: int | None,
    density: float | None,
) -> tuple[str, int, object]:
    if not adapters:
        raise ValueError("add_weighted_adapter needs at least one adapter to combine.")
    if len(weights) != len(adapters):
        raise ValueError(f"Got {len(adapters)} adapters but {len(weights)} weights; give one weight per adapter.")
    for adapter in adapters:
        if adapter not in tuner.peft_config:
            raise ValueError(f"Adapter {adapter} does not exist; existing adapters: {list(tuner.peft_config)}.")
        config = tuner.peft_config[adapter]
        if config.use_dora:
            raise ValueError(
                f"add_weighted_adapter can't combine DoRA adapters ({adapter!r}): their magnitude vectors have no "
                f"weighted combination. Merge them into the base model instead (merge_and_unload)."
            )
        if config.lora_bias:
            raise ValueError(f"add_weighted_adapter can't combine adapters with lora_bias=True ({adapter!r}).")
        if getattr(config, "kasa_config", None) is not None:
            raise ValueError(
                f"add_weighted_adapter can't combine KaSA adapters ({adapter!r}): the combined adapter would be a KaSA "
                f"adapter and truncate the base weights a second time. Merge them into the base model instead."
            )
    wrappers = [m for m in tuner.model.modules() if isinstance(m, ModulesToSaveWrapper)]
    if any(sum(a in w.modules_to_save for a in adapters) > 1 for w in wrappers):
        raise ValueError(
            "Cannot add weighted adapters if they target the same module with modules_to_save; these full copies "
            "have no weighted combination."
        )
    if len(adapters) == 1:
        combination_type = "linear"
    ranks = [
        config.r if not config.rank_pattern else max(config.r, *config.rank_pattern.values())
        for config in (tuner.peft_config[a] for a in adapters)
    ]
    known = combination_type in LINEAR_TYPES or combination_type in SVD_TYPES or combination_type == "cat"
    if known and combination_type not in ("linear", "svd", "cat") and density is None:
        raise ValueError(
            f"combination_type {combination_type!r} needs `density` (the fraction of entries to keep, in [0, 1])."
        )
    if combination_type in LINEAR_TYPES:
        if len(set(ranks)) != 1:
            raise ValueError(
                "All adapters must have the same r value when using combination_type linear, ties, dare_ties, "
                f"dare_linear or magnitude_prune (got ranks {ranks}); use 'cat' or 'svd' instead."
            )
        new_rank = ranks[0]
    elif combination_type == "cat":
        new_rank = sum(ranks)
    elif combination_type in SVD_TYPES:
        new_rank = svd_rank or max(ranks)
    else:
        raise ValueError(
            f"Invalid combination_type: {combination_type!r}; use one of 'svd', 'linear', 'cat', 'ties', 'ties_svd', "
            f"'dare_linear', 'dare_ties', 'dare_linear_svd', 'dare_ties_svd', 'magnitude_prune', 'magnitude_prune_svd'."
        )
    kinds = {type(tuner.peft_config[a].target_modules) for a in adapters}
    if len(kinds) > 1:
        raise ValueError(
            "all adapter configs should follow the same target modules type. Combining adapters with `target_modules` "
            "type being a mix of list/set and string is not supported."
        )
    kind = kinds.pop()
    if kind is str:
        new_targets: object = "|".join(f"({tuner.peft_config[a].target_modules})" for a in adapters)
    elif kind in (set, list, tuple):
        new_targets = reduce(operator.or_, (set(tuner.peft_config[a].target_modules) for a in adapters))
    else:
        raise TypeError(f"Invalid type {kind} found in target_modules")
    return combination_type, new_rank, new_targets


def _factors(layer: LoraLayer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name in layer.lora_A:
        return layer.lora_A[name].weight, layer.lora_B[name].weight
    return layer.lora_embedding_A[name], layer.lora_embedding_B[name]


def _present(layer: LoraLayer, adapters: list[str], weights: list[float]) -> list[tuple[str, float]]:
    found = [(a, w) for a, w in zip(adapters, weights) if layer.has_lora(a)]
    if not found:
        raise ValueError("No matching LoRAs found for a layer of the new adapter.")
    return found


def _cat(
    layer: LoraLayer, adapters: list[str], weights: list[float], target_a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    loras_a, loras_b = [], []
    for adapter, weight in _present(layer, adapters, weights):
        a, b = _factors(layer, adapter)
        loras_a.append(a.data * weight * layer.scaling[adapter])
        loras_b.append(b.data)
    return torch.cat(loras_a, dim=0), torch.cat(loras_b, dim=1)


def _linear(
    layer: LoraLayer,
    adapters: list[str],
    weights: list[float],
    combination_type: str,
    density: float | None,
    majority_sign_method: SignMethod,
) -> tuple[torch.Tensor, torch.Tensor]:
    weights_a, weights_b, factors_a, factors_b = [], [], [], []
    for adapter, weight in _present(layer, adapters, weights):
        a, b = _factors(layer, adapter)
        scaled = weight * layer.scaling[adapter]
        sign = 1 if scaled >= 0 else -1  # the sign goes on A only, or it would cancel out
        weights_a.append(math.sqrt(abs(scaled)) * sign)
        weights_b.append(math.sqrt(abs(scaled)))
        factors_a.append(a.data)
        factors_b.append(b.data)
    dtype = factors_a[0].dtype
    new_a = combine(
        combination_type, factors_a, torch.tensor(weights_a, device=factors_a[0].device), density, majority_sign_method
    )
    new_b = combine(
        combination_type, factors_b, torch.tensor(weights_b, device=factors_b[0].device), density, majority_sign_method
    )
    return new_a.to(dtype), new_b.to(dtype)


def _svd(
    layer: LoraLayer,
    adapters: list[str],
    weights: list[float],
    combination_type: str,
    new_rank: int,
    target_a: torch.Tensor,
    target_b: torch.Tensor,
    density: float | None,
    majority_sign_method: SignMethod,
    clamp: float | None,
    full_matrices: bool,
    driver: str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    present = _present(layer, adapters, weights)
    deltas = [layer.get_delta_weight(a) for a, _ in present]  # already scaled
    valid_weights = torch.tensor([w for _, w in present], device=deltas[0].device)
    delta = combine(combination_type.removesuffix("_svd"), deltas, valid_weights, density, majority_sign_method)
    if isinstance(layer, _ConvNd):
        delta = delta.flatten(start_dim=1)  # [out, in * kernel]
    if getattr(layer, "fan_in_fan_out", False) or isinstance(layer, Embedding):
        delta = delta.T  # to (out, in) as B@A is laid out
    u, s, vh = torch.linalg.svd(delta.float(), full_matrices=full_matrices, driver=driver)
    u = u[:, :new_rank] @ torch.diag(s[:new_rank])
    vh = vh[:new_rank, :]
    if clamp is not None:
        dist = torch.cat([u.flatten(), vh.flatten()])
        hi_val = torch.quantile(dist, clamp)
        u, vh = u.clamp(-hi_val, hi_val), vh.clamp(-hi_val, hi_val)
    if isinstance(layer, _ConvNd):
        vh = vh.reshape((vh.shape[0],) + tuple(target_a.shape[1:]))
        u = u.reshape((u.shape[0], u.shape[1]) + tuple(target_b.shape[2:]))
    return vh, u
