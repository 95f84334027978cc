"""Adapter tensors "as if trained", for tests that compare two libraries' models.

A fresh adapter is often an identity (zeros, ones), which hides bugs; tests give it random values instead.
The values are drawn in parameter-name order from one seeded generator, so a peft_core model and a
Hugging Face PEFT model with the same adapter names get the same values.
"""

from __future__ import annotations

from typing import Callable, Union

import torch
from torch import nn

Offset = Union[float, Callable[[str], float]]


def fill_as_if_trained(model: nn.Module, marker: str, seed: int = 3, scale: float = 1.0, offset: Offset = 0.0) -> None:
    """Set every parameter whose name contains `marker` to `offset + scale * noise` (`offset` may depend on
    the parameter's name, e.g. 1 for norm weights and 0 for their biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):  # sorted: same values in both libraries
            if marker in name:
                base = offset(name) if callable(offset) else offset
                param.copy_(base + scale * torch.randn(param.shape, generator=gen))


def as_if_trained(marker: str, scale: float = 1.0, offset: Offset = 0.0) -> Callable[..., None]:
    """`fill_as_if_trained` for one method's tensors, as a `randomize(model, seed=3)` function (what the
    `randomize` fixtures of method packages return)."""

    def randomize(model: nn.Module, seed: int = 3) -> None:
        fill_as_if_trained(model, marker, seed=seed, scale=scale, offset=offset)

    return randomize
