"""For layers whose adapters transform the base weight as a matrix (rotations, reflections): the weight
seen as `[out, n]` (a conv filter flattened to `in_channels * kh * kw`), and the refusal of grouped
convolutions, whose filter holds only `in_channels / groups` channels per output."""

from __future__ import annotations

import math

import torch
from torch import nn


def flat_weight(base: nn.Module) -> torch.Tensor:
    """`base.weight` as `[out, n]` (a view of the data: no autograd)."""
    weight = base.weight.data
    return weight.reshape(weight.shape[0], -1)


def set_flat_weight(base: nn.Module, flat: torch.Tensor) -> None:
    """Write a `[out, n]` matrix back into `base.weight`, in its shape and dtype."""
    weight = base.weight
    weight.data = flat.reshape(weight.shape).contiguous().to(weight.dtype)


def conv_filter_features(conv: nn.Module, method: str, acts_as: str = "rotation") -> int:
    """`in_channels * prod(kernel_size)`, the length of a flattened filter; a grouped convolution is refused
    (ValueError naming `method`), since its filter is not the whole input patch."""
    if conv.groups != 1:
        raise ValueError(
            f"{method} does not support grouped convolutions (groups={conv.groups}): its {acts_as} acts on "
            f"in_channels * kernel_size, but a grouped filter holds only in_channels / groups channels."
        )
    return conv.in_channels * math.prod(conv.kernel_size)
