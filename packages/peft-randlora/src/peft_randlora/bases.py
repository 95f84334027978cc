"""The frozen random bases of a RandLoRA adapter, drawn exactly as Hugging Face PEFT draws them.

`randlora_A [r, 1, min_dim]` and `randlora_B [max_dim, n, r]` with `n = ceil(min_dim / r)` come from
one CPU `torch.Generator` seeded with `projection_prng_key` (A first, then B), so adapters saved
without their bases (`save_projection=False`) regenerate identically.

- Dense bases are Kaiming-uniform (`a = √5`) and drawn in bfloat16 (float16 where the machine's
  accelerator lacks bf16, as HF decides through accelerate), B as `n` draws of `[max_dim, 1, r]`;
  each basis is then divided by its standard deviation.
- Sparse bases threshold uniform draws to −1 / 0 / 1 (`P(±1) = 1/(2s)` each, `s = 3`, or
  `s = √min_dim` for `very_sparse`) and are divided by their standard deviation.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def basis_count(min_dim: int, r: int) -> int:
    """Bases needed to reach full rank: `ceil(min_dim / r)`."""
    return math.ceil(min_dim / r)


def dense_draw_dtype() -> torch.dtype:
    """bfloat16, or float16 on machines whose accelerator has no bf16 (accelerate's `is_bf16_available`)."""
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.bfloat16 if mps.is_macos_or_newer(14, 0) else torch.float16
    return torch.bfloat16


def make_bases(
    r: int, max_dim: int, min_dim: int, key: int, sparse: bool = False, very_sparse: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device="cpu").manual_seed(key)
    count = basis_count(min_dim, r)
    if sparse or very_sparse:
        sparsity = math.sqrt(min_dim) if very_sparse else 3
        basis_a = _ternary(torch.rand((r, 1, min_dim), generator=generator), sparsity)
        basis_b = _ternary(torch.rand((max_dim, count, r), generator=generator), sparsity)
    else:
        dtype = dense_draw_dtype()
        basis_a = _kaiming((r, 1, min_dim), dtype, generator)
        basis_b = torch.cat([_kaiming((max_dim, 1, r), dtype, generator) for _ in range(count)], dim=1)
    return basis_a / basis_a.std(), basis_b / basis_b.std()


def _kaiming(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    with torch.no_grad():
        return nn.init.kaiming_uniform_(torch.empty(shape, dtype=dtype), a=math.sqrt(5), generator=generator)


def _ternary(uniform: torch.Tensor, sparsity: float) -> torch.Tensor:
    out = torch.zeros(uniform.shape)
    out[uniform < 1 / (2 * sparsity)] = -1
    out[uniform > 1 - 1 / (2 * sparsity)] = 1
    return out
