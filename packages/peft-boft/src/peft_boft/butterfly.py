"""BOFT's orthogonal matrix: a product of butterfly-permuted block-diagonal Cayley rotations.

An adapter stores `boft_R` of shape `[m, n_blocks, b, b]` (unconstrained; only its skew part counts).
Factor `i` is `P_i · blockdiag(C(R[i, 0]), …, C(R[i, n_blocks-1])) · P_iᵀ`, with `C` the exact Cayley
transform `C(A) = (I - S)(I + S)^-1`, `S = (A - Aᵀ)/2`, and `P_i` the permutation matrix of
`butterfly_permutation(n, n_blocks / 2^i, b / 2, m - 1)`. The rotation is `F_{m-1} ⋯ F_1 F_0`; inputs are
rotated as `x @ rotation` (so merging sets `W <- (W @ rotationᵀ) * boft_s`).

Hugging Face PEFT builds the block diagonal with a CUDA extension when more than one factor is used;
this module computes the same matrix in plain PyTorch.
"""

from __future__ import annotations

import torch
from torch import nn


def butterfly_permutation(n: int, groups: int, half_block: int, n_butterfly_factor: int) -> torch.Tensor:
    """Indices `perm` of the butterfly permutation (`P[i, perm[i]] = 1`), HF's `block_butterfly_perm`.

    The `n` positions are split into `groups` equal groups; inside each group the chunks of `half_block`
    positions are reordered: the even-numbered chunks first, then the odd-numbered ones. With
    `n_butterfly_factor == 0` (a single factor) the permutation is the identity.
    """
    if n_butterfly_factor == 0:
        return torch.arange(n, device="cpu")
    if groups * half_block * 2 > n:
        raise ValueError(f"Invalid number of blocks: {groups} groups of 2 x {half_block} exceed the dimension {n}.")
    group = n // groups
    chunks = group // half_block
    if group * groups != n or chunks * half_block != group:
        raise ValueError(f"Butterfly permutation needs {n} = groups ({groups}) x chunks x {half_block}.")
    order = list(range(0, chunks, 2)) + list(range(1, chunks, 2))
    within = torch.cat([torch.arange(c * half_block, (c + 1) * half_block, device="cpu") for c in order])
    return torch.cat([g * group + within for g in range(groups)])


def cayley(data: torch.Tensor) -> torch.Tensor:
    """Exact Cayley transform of the skew part of each `[k, b, b]` matrix (identity in the default dtype, as HF)."""
    k, b, _ = data.shape
    skew = 0.5 * (data - data.transpose(1, 2))
    eye = torch.eye(b, device=data.device).unsqueeze(0).expand(k, b, b)
    return torch.linalg.solve(eye + skew, eye - skew, left=False).to(data.dtype)


def butterfly_matrix(blocks: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """`[m, n_blocks, b, b]` orthogonal blocks and `[m, n]` permutations -> the `[n, n]` rotation."""
    result: torch.Tensor | None = None
    for factor, perm in zip(blocks.unbind(0), permutations.to(blocks.device).unbind(0)):
        diag = torch.block_diag(*factor.unbind(0))
        permuted = diag[perm][:, perm]  # P · diag · Pᵀ
        result = permuted if result is None else permuted @ result
    assert result is not None
    return result


class MultiplicativeDropout(nn.Module):
    """In training, replace a random `p` fraction of the blocks of one random factor by the identity."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return blocks
        n_factors, n_blocks, b, _ = blocks.shape
        n_drop = int(self.p * n_blocks)
        mask = torch.zeros(n_factors, n_blocks, 1, 1, device=blocks.device)
        factor = int(torch.randint(0, n_factors, (1,)).item())
        mask[factor, torch.randperm(n_blocks, device=blocks.device)[:n_drop]] = 1.0
        eye = torch.eye(b, device=blocks.device).expand_as(blocks)
        return (1 - mask) * blocks + mask * eye

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ButterflyPermutations(nn.Module):
    """Holds one adapter's permutations `[m, n]` as a non-persistent buffer (never saved)."""

    def __init__(self, n: int, block_num: int, block_size: int, n_factors: int) -> None:
        super().__init__()
        m = n_factors - 1
        perms = torch.stack(
            [butterfly_permutation(n, block_num // (2**i), block_size // 2, m) for i in range(n_factors)]
        )
        # Built on the CPU explicitly: stays valid when the adapter is created under a meta-device context.
        self.register_buffer("indices", perms, persistent=False)
