"""Block-circulant products through FFTs, as Hugging Face PEFT computes them.

A kernel `w [m, n, b]` stands for an `[m·b, n·b]` matrix made of `m × n` circulant `b × b` blocks.
Multiplying an input by it is a sum of circular convolutions per block, done in the frequency
domain: `y_j = Re FFT( Σ_i IFFT(x_i) · FFT(w_ji) )`. The dense matrix (for merging) is the same
product applied to the identity, so merged weights and the forward pass use identical arithmetic.
Everything runs in fp32 (half-precision FFTs are limited to power-of-two sizes on GPUs, and bf16
has none).
"""

from __future__ import annotations

import torch
from torch.fft import fft, ifft


def block_circulant_product(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`x [..., n·b] → [..., m·b]`: `x` times the block-circulant matrix of `kernel [m, n, b]`."""
    _, n, b = kernel.shape
    blocks = x.reshape(*x.shape[:-1], n, b)
    mixed = torch.einsum("...nb,mnb->...mb", ifft(blocks), fft(kernel))
    out = fft(mixed).real
    return out.reshape(*out.shape[:-2], -1)


def block_circulant_matrix(kernel: torch.Tensor) -> torch.Tensor:
    """The dense `[m·b, n·b]` matrix of `kernel [m, n, b]` (rows: outputs, columns: inputs)."""
    _, n, b = kernel.shape
    identity = torch.eye(n * b, dtype=kernel.dtype, device=kernel.device)
    return block_circulant_product(identity, kernel).T
