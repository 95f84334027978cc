"""OFT's rotation: packed skew-symmetric blocks -> orthogonal blocks (Cayley transform).

Each adapter stores `weight` of shape `[n_blocks, b(b-1)/2]`: the strict upper triangle of a
skew-symmetric `b x b` matrix `Q` per block (`Q = U - U^T`). The block's rotation `R` is

- `use_cayley_neumann=True` (default): the polynomial `I + 2Q + 2Q^2 + ... + 2Q^(k-2) + Q^(k-1)` with
  `k = num_cayley_neumann_terms`, a truncated series of `(I + Q)(I - Q)^-1`. The terms are exactly
  Hugging Face PEFT's (>= 0.18): `k <= 1` gives `I`, `k = 2` gives `I + 2Q`, and `k = 3` and `k = 4` both
  give `I + 2Q + 2Q^2 + Q^3`.
- `use_cayley_neumann=False`: the exact `(I - Q)(I + Q)^-1`, which is the *inverse* (transpose) of what
  the series approximates. So switching the flag flips the direction of the rotation, as in HF.

The layer rotates its input per block: `x_block -> x_block @ R` (equivalently `W -> W @ blockdiag(R)^T`).
"""

from __future__ import annotations

import torch
from torch import nn


def skew_from_packed(vec: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, block_size: int) -> torch.Tensor:
    """`[n, b(b-1)/2]` strict upper triangles -> `[n, b, b]` skew-symmetric matrices."""
    upper = torch.zeros(vec.shape[0], block_size, block_size, device=vec.device, dtype=vec.dtype)
    upper[:, rows.to(vec.device), cols.to(vec.device)] = vec
    return upper - upper.transpose(-2, -1)


def cayley_neumann(q: torch.Tensor, num_terms: int) -> torch.Tensor:
    """HF's truncated Cayley-Neumann series for a batch `[n, b, b]` of skew-symmetric matrices."""
    n, b, _ = q.shape
    out = torch.eye(b, device=q.device, dtype=q.dtype).repeat(n, 1, 1)
    if num_terms < 2:
        return out
    out.add_(q, alpha=2.0)
    if num_terms < 3:
        return out
    power = torch.bmm(q, q)
    out.add_(power, alpha=2.0)
    for _ in range(max(num_terms - 4, 0)):  # Q^3 ... Q^(k-2), doubled
        power = torch.bmm(power, q)
        out.add_(power, alpha=2.0)
    power = torch.bmm(power, q)  # the last term, not doubled
    out.add_(power)
    return out


def cayley_exact(q: torch.Tensor) -> torch.Tensor:
    """`(I - Q)(I + Q)^-1` for a batch of skew-symmetric matrices (identity in the default float dtype, as HF)."""
    n, b, _ = q.shape
    eye = torch.eye(b, device=q.device).unsqueeze(0).expand(n, b, b)
    return torch.linalg.solve(eye + q, eye - q, left=False)


def coft_project(vec: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, block_size: int, eps: float) -> torch.Tensor:
    """COFT: shrink each block's skew matrix onto the Frobenius ball of radius `eps / sqrt(n_blocks)`."""
    q = skew_from_packed(vec, rows, cols, block_size)
    radius = eps / torch.sqrt(torch.tensor(float(q.shape[0])))
    norm = torch.norm(q, dim=(1, 2), keepdim=True)
    projected = torch.where(norm <= radius, q, radius * (q / norm))
    return projected[:, rows.to(vec.device), cols.to(vec.device)]


class OFTRotation(nn.Module):
    """One adapter's rotation on one layer. Its only saved tensor is `weight` (HF key `oft_R.weight`).

    `rows`/`cols` (the upper-triangle index) are non-persistent buffers rebuilt from the block size.
    """

    def __init__(
        self,
        n_blocks: int,
        block_size: int,
        in_features: int,
        *,
        coft: bool = False,
        eps: float = 6e-5,
        block_share: bool = False,
        use_cayley_neumann: bool = True,
        num_cayley_neumann_terms: int = 5,
    ) -> None:
        super().__init__()
        self.n_blocks = n_blocks  # blocks applied along the input
        self.block_size = block_size
        self.in_features = in_features
        self.coft = coft
        self.eps = eps
        self.block_share = block_share
        self.use_cayley_neumann = use_cayley_neumann
        self.num_cayley_neumann_terms = num_cayley_neumann_terms
        stored = 1 if block_share else n_blocks
        self.weight = nn.Parameter(torch.empty(stored, block_size * (block_size - 1) // 2))
        # Explicit CPU device: stays valid when the adapter is created under a meta-device context.
        rows, cols = torch.triu_indices(block_size, block_size, 1, device="cpu")
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def extra_repr(self) -> str:
        return (
            f"n_blocks={self.n_blocks}, block_size={self.block_size}, coft={self.coft}, block_share={self.block_share}, "
            f"use_cayley_neumann={self.use_cayley_neumann}, num_cayley_neumann_terms={self.num_cayley_neumann_terms}"
        )

    def _project_in_place(self) -> torch.Tensor:
        """With COFT, the stored parameters are projected in place before each use (HF's behaviour)."""
        if self.coft:
            with torch.no_grad():
                self.weight.copy_(coft_project(self.weight, self.rows, self.cols, self.block_size, self.eps))
        return self.weight

    def blocks(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The stored rotation blocks `[stored, b, b]` (one block when shared), in the parameter dtype."""
        weight = self._project_in_place() if weight is None else weight
        q = skew_from_packed(weight, self.rows, self.cols, self.block_size)
        if self.use_cayley_neumann:
            r = cayley_neumann(q, self.num_cayley_neumann_terms)
        else:
            r = cayley_exact(q)
        return r.to(weight.dtype)

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """`x[..., in]` with each block of the last dimension multiplied on the right by its rotation."""
        dtype = x.dtype
        if dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)
        blocks = self.blocks()
        if self.block_share:
            blocks = blocks.repeat(self.n_blocks, 1, 1)
        lead = x.shape[:-1]
        rotated = torch.einsum("...rk,rkc->...rc", x.reshape(*lead, self.n_blocks, self.block_size), blocks)
        return rotated.reshape(*lead, self.in_features).to(dtype)

    def matrix(self) -> torch.Tensor:
        """The full block-diagonal rotation `[in, in]` (inputs are rotated as `x @ matrix()`)."""
        blocks = self.blocks()
        if self.block_share:
            return torch.block_diag(*[blocks[0]] * self.n_blocks)
        return torch.block_diag(*blocks.unbind(0))
