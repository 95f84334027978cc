"""Half-precision products on the CPU, computed in float32.

CPU matmuls in float16 / bfloat16 are slow and round more than the GPU's; Hugging Face PEFT computes an
adapter's delta weight in float32 there and rounds the result back once. Every method's `get_delta_weight`
does the same through these two helpers (identical bits to HF's).
"""

from __future__ import annotations

import torch

_HALF = (torch.float16, torch.bfloat16)


def upcast_half_on_cpu(*tensors: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.dtype | None]:
    """`(tensors in float32, their dtype)` when the first is a float16 / bfloat16 tensor on the CPU, else
    `(tensors, None)`; pass the dtype to `round_back` with the result."""
    first = tensors[0]
    if first.device.type == "cpu" and first.dtype in _HALF:
        return tuple(t.float() for t in tensors), first.dtype
    return tensors, None


def round_back(result: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`result` in `dtype` (the one `upcast_half_on_cpu` returned); unchanged for None."""
    return result if dtype is None else result.to(dtype)
