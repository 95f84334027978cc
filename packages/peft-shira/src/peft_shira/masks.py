"""SHiRA masks: which entries of a weight an adapter trains.

A mask function is called as `mask_fn(base_layer, r, **kwargs)` and returns a tensor shaped like
the weight (`[out, in]`) holding exactly `r·(in + out)` ones and zeros elsewhere. `random_mask` is
the built-in one; `indices_from_mask` turns any mask into the `[2, k]` int32 (row, column) list that
is trained and saved.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import torch
from torch import nn

from peft_core import ConfigError


def shira_parameter_count(r: int, in_features: int, out_features: int) -> int:
    return r * (in_features + out_features)


def random_mask(base_layer: nn.Module, r: int, random_seed: Optional[int] = None, **kwargs: Any) -> torch.Tensor:
    """A uniformly random mask, drawn exactly as Hugging Face PEFT draws it.

    A fresh CPU generator (seeded with `random_seed`, else left at its fixed default seed) permutes
    the `out·in` positions; the first `r·(in + out)` are kept. The mask is boolean, on the weight's device.
    """
    out_features, in_features = base_layer.out_features, base_layer.in_features
    count = shira_parameter_count(r, in_features, out_features)
    generator = torch.Generator()
    if random_seed is not None:
        generator.manual_seed(random_seed)
    device = base_layer.weight.device
    chosen = torch.randperm(out_features * in_features, generator=generator, device="cpu")[:count].to(device)
    mask = torch.zeros(out_features * in_features, dtype=torch.bool, device=device)
    mask[chosen] = True
    return mask.view(out_features, in_features)


def call_mask_fn(mask_fn: Callable[..., torch.Tensor], base_layer: nn.Module, r: int, **kwargs: Any) -> torch.Tensor:
    """Call a mask function with the keyword arguments it accepts (HF passes e.g. `random_seed`, `bias`)."""
    try:
        params = inspect.signature(mask_fn).parameters.values()
    except (TypeError, ValueError):  # builtins / C callables: pass everything
        return mask_fn(base_layer, r, **kwargs)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names = {p.name for p in params}
        kwargs = {k: v for k, v in kwargs.items() if k in names}
    return mask_fn(base_layer, r, **kwargs)


def indices_from_mask(mask: torch.Tensor, expected_count: int, where: str) -> torch.Tensor:
    """The (row, column) positions of the ones of `mask`, row-major, as a `[2, k]` int32 tensor."""
    if not torch.is_tensor(mask) or mask.dim() != 2:
        raise ConfigError(f"SHiRA mask_fn for {where} must return a 2-D tensor shaped like the weight, got {mask!r}.")
    values = mask if mask.dtype == torch.bool else mask.float()
    if values.dtype != torch.bool and not torch.all((values == 0) | (values == 1)):
        raise ConfigError(f"SHiRA mask for {where} must hold only 0 and 1.")
    rows, cols = torch.where(values == 1)
    if rows.numel() != expected_count:
        raise ConfigError(
            f"SHiRA mask for {where} has {rows.numel()} ones but the adapter trains r*(in+out) = {expected_count} "
            f"entries; make the mask function keep exactly that many."
        )
    return torch.stack([rows, cols]).to(torch.int32)
