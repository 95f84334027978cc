"""One level of the inverse 2-D discrete wavelet transform, as a transposed convolution.

The four sub-bands (approximation, horizontal, vertical and diagonal details) are stacked as
channels and up-sampled by a stride-2 transposed convolution with the four separable filters
`lo⊗lo, hi⊗lo, lo⊗hi, hi⊗hi`; the filter's support is then cropped from each side. This is the
arithmetic Hugging Face PEFT uses (after the PyTorch wavelet toolbox), so results are bit-identical
for the same filters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .families import reconstruction_filters


def inverse_dwt2(
    approx: torch.Tensor, horizontal: torch.Tensor, vertical: torch.Tensor, diagonal: torch.Tensor, family: str
) -> torch.Tensor:
    """`[h, w]` sub-bands → the `[2h − (L − 2), 2w − (L − 2)]` signal (`L` the filter length)."""
    lo, hi = reconstruction_filters(family, approx.dtype, approx.device)
    kernels = torch.stack([_outer(lo, lo), _outer(hi, lo), _outer(lo, hi), _outer(hi, hi)], 0).unsqueeze(1)
    bands = torch.stack([approx, horizontal, vertical, diagonal], 0).unsqueeze(0)  # [1, 4, h, w]
    out = F.conv_transpose2d(bands, kernels, stride=2).squeeze(1).squeeze(0)
    crop = (2 * lo.shape[-1] - 3) // 2
    if crop > 0:
        out = out[crop:-crop, crop:-crop]
    return out


def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.reshape(-1).unsqueeze(-1) * b.reshape(-1).unsqueeze(0)
