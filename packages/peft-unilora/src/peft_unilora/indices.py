"""Uni-LoRA's fixed index assignment: which entry of `θ` each LoRA factor entry reads, and its scale.

Hugging Face PEFT draws it with numpy's `default_rng(proj_seed)`: every index of `θ` is used
`⌊D/d⌋` times, `D mod d` distinct extra ones once more (`rng.choice(..., replace=False)`), and the
whole list is shuffled (`rng.shuffle`). The list is cut in order over the adapted layers (in module
order), `A`'s `r·in` entries then `B`'s `out·r`. Each entry is scaled by `1/√(uses of its index)`.
The same generator calls are made here, so regenerated indices equal those of HF's files.
"""

from __future__ import annotations

import numpy as np
import torch


def balanced_indices(count: int, theta_d_length: int, seed: int) -> torch.Tensor:
    """`count` indices into `θ` (int64), each value used `⌊count/d⌋` or `⌈count/d⌉` times, shuffled."""
    if count < 0 or theta_d_length <= 0:
        raise ValueError(f"need count >= 0 and theta_d_length > 0, got {count} and {theta_d_length}")
    rng = np.random.default_rng(seed)
    data = np.repeat(np.arange(theta_d_length), count // theta_d_length)
    extra = count % theta_d_length
    if extra:
        data = np.concatenate([data, rng.choice(theta_d_length, size=extra, replace=False)])
    rng.shuffle(data)
    return torch.as_tensor(data, dtype=torch.long)


def inverse_sqrt_uses(indices: torch.Tensor, theta_d_length: int) -> torch.Tensor:
    """Per index of `θ`: `1/√(uses)` (0 for an unused index), float32."""
    uses = torch.bincount(indices, minlength=theta_d_length)
    scale = torch.zeros(theta_d_length, dtype=torch.float32)
    used = uses > 0
    scale[used] = uses[used].float().rsqrt()
    return scale
