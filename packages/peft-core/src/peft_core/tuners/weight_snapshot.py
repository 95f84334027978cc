"""The base weight as it was before a layer's first merge, for methods whose unmerge must give it back exactly.

Some merges are not exactly undone by subtracting (products with the original weight, rounding in low
precision): such layers keep a CPU copy of the weight before the first merge, use it while merged and put it
back when the last adapter is unmerged. The copy lives at `layer._weight_before_merge` (None when not kept).
"""

from __future__ import annotations

import torch
from torch import nn

ATTR = "_weight_before_merge"


def weight_before_merge(layer: nn.Module) -> torch.Tensor:
    """The base weight before the first merge, on the weight's device and in its dtype (kept now if it is not)."""
    weight = layer.get_base_layer().weight
    kept = layer.__dict__.get(ATTR)
    if kept is None:
        kept = layer.__dict__[ATTR] = weight.data.detach().clone().cpu()
    return kept.to(device=weight.device, dtype=weight.dtype)


def restore_weight_before_merge(layer: nn.Module) -> bool:
    """Put the kept weight back bit for bit and forget it; False (nothing done) when none is kept."""
    kept = layer.__dict__.get(ATTR)
    if kept is None:
        return False
    weight = layer.get_base_layer().weight
    weight.data.copy_(kept.to(device=weight.device, dtype=weight.dtype))
    layer.__dict__[ATTR] = None
    return True
