"""Ways to combine several tensors of the same shape into one (used by `add_weighted_adapter`).

- task_arithmetic: Σ wᵢ·tᵢ
- magnitude_prune: keep each tensor's top-`density` entries by magnitude, then Σ wᵢ·tᵢ
- ties: magnitude pruning, elect a sign per entry, average the weighted entries that agree with it
- dare_linear / dare_ties: random pruning with rescaling by 1/density, then linear / ties
"""

from __future__ import annotations

import warnings
from typing import Literal, Sequence

import torch

SignMethod = Literal["total", "frequency"]


def _weighted(tensors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return tensors * weights.view(weights.shape + (1,) * (tensors.dim() - weights.dim()))


def _prune(tensor: torch.Tensor, density: float, method: str, rescale: bool = False) -> torch.Tensor:
    if density >= 1:
        warnings.warn(f"The density {density} is greater than or equal to 1, no pruning will be performed.")
        return tensor
    if density < 0:
        raise ValueError(f"density should be in [0, 1], got {density}.")
    if method == "magnitude":
        mask = torch.zeros_like(tensor).reshape(-1)
        k = int(density * tensor.numel())
        mask[torch.topk(tensor.abs().reshape(-1), k=k, largest=True)[1]] = 1
        return tensor * mask.reshape(tensor.shape)
    mask = torch.bernoulli(torch.full_like(tensor, fill_value=density))
    pruned = tensor * mask
    return pruned / density if rescale else pruned


def _majority_sign_mask(tensors: torch.Tensor, method: SignMethod) -> torch.Tensor:
    sign = tensors.sign()
    if method == "total":
        magnitude = tensors.sum(dim=0)
    elif method == "frequency":
        magnitude = sign.sum(dim=0)
    else:
        raise ValueError(f"majority_sign_method must be 'total' or 'frequency', got {method!r}.")
    return sign == torch.where(magnitude >= 0, 1, -1)


def _disjoint_merge(weighted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    kept = mask.sum(dim=0)
    return (weighted * mask).sum(dim=0) / torch.clamp(kept, min=1.0)


def task_arithmetic(tensors: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    return _weighted(torch.stack(list(tensors)), weights).sum(dim=0)


def magnitude_prune(tensors: Sequence[torch.Tensor], weights: torch.Tensor, density: float) -> torch.Tensor:
    pruned = torch.stack([_prune(t, density, "magnitude") for t in tensors])
    return _weighted(pruned, weights).sum(dim=0)


def ties(
    tensors: Sequence[torch.Tensor], weights: torch.Tensor, density: float, majority_sign_method: SignMethod = "total"
) -> torch.Tensor:
    pruned = torch.stack([_prune(t, density, "magnitude") for t in tensors])
    mask = _majority_sign_mask(pruned, majority_sign_method)
    return _disjoint_merge(_weighted(pruned, weights), mask)


def dare_linear(tensors: Sequence[torch.Tensor], weights: torch.Tensor, density: float) -> torch.Tensor:
    pruned = torch.stack([_prune(t, density, "random", rescale=True) for t in tensors])
    return _weighted(pruned, weights).sum(dim=0)


def dare_ties(
    tensors: Sequence[torch.Tensor], weights: torch.Tensor, density: float, majority_sign_method: SignMethod = "total"
) -> torch.Tensor:
    pruned = torch.stack([_prune(t, density, "random", rescale=True) for t in tensors])
    mask = _majority_sign_mask(pruned, majority_sign_method)
    return _disjoint_merge(_weighted(pruned, weights), mask)


def combine(
    method: str,
    tensors: Sequence[torch.Tensor],
    weights: torch.Tensor,
    density: float | None,
    majority_sign_method: SignMethod,
) -> torch.Tensor:
    """Dispatch on the method name (the `_svd` suffix is stripped by the caller)."""
    if method in ("linear", "svd", "cat"):
        return task_arithmetic(tensors, weights)
    if density is None:
        raise ValueError(f"combination_type {method!r} needs `density` (the fraction of entries to keep, in [0, 1]).")
    if method == "magnitude_prune":
        return magnitude_prune(tensors, weights, density)
    if method == "ties":
        return ties(tensors, weights, density, majority_sign_method)
    if method == "dare_linear":
        return dare_linear(tensors, weights, density)
    if method == "dare_ties":
        return dare_ties(tensors, weights, density, majority_sign_method)
    raise ValueError(f"Invalid combination_type {method!r}.")
