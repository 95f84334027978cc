"""An embedding lookup with another weight, as the wrapped `nn.Embedding` itself would do it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def embed_like(base: nn.Embedding, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`F.embedding(x, weight)` with `base`'s settings (padding index, max norm, sparse gradients ...): the
    forward of a layer that looks rows up in an adapted copy of an embedding's weight."""
    return F.embedding(
        x,
        weight,
        padding_idx=base.padding_idx,
        max_norm=base.max_norm,
        norm_type=base.norm_type,
        scale_grad_by_freq=base.scale_grad_by_freq,
        sparse=base.sparse,
    )
