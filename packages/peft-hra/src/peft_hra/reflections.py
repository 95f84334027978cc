"""HRA's orthogonal matrix from the reflection vectors `hra_u` (`[n, r]`, one vector per column).

- Default: `H = Π_{i=1..r} (I - 2 ûᵢ ûᵢᵀ)` with `ûᵢ = uᵢ / ‖uᵢ‖`, multiplied left to right. Each factor is its own
  inverse, so the reverse product undoes it (used to unmerge).
- `apply_GS=True`: the vectors are orthonormalised in order (Gram-Schmidt) into `Q`, and `H = I - 2 Q Qᵀ`, which
  is its own inverse.

The adapted weight is `W @ H` (on Conv2d, the filter flattened to `[out, in_channels * kh * kw]`).
"""

from __future__ import annotations

import torch


def householder_product(u: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """`Π (I - 2 ûᵢ ûᵢᵀ)` over the columns of `u`, in column order (or reversed)."""
    n, r = u.shape
    unit = u / u.norm(dim=0)
    h = torch.eye(n, device=u.device, dtype=u.dtype)
    for i in (range(r - 1, -1, -1) if reverse else range(r)):
        col = unit[:, i].view(-1, 1)
        h = h - 2 * h @ col @ col.t()
    return h


def gram_schmidt_reflection(u: torch.Tensor) -> torch.Tensor:
    """`I - 2 Q Qᵀ` with `Q` the Gram-Schmidt orthonormalisation of the columns of `u`."""
    n, r = u.shape
    basis = [(u[:, 0] / u[:, 0].norm()).view(-1, 1)]
    for i in range(1, r):
        col = u[:, i].view(-1, 1)
        for prev in basis:
            col = col - (prev.t() @ col) * prev
        basis.append((col / col.norm()).view(-1, 1))
    q = torch.cat(basis, dim=1)
    return torch.eye(n, device=u.device, dtype=u.dtype) - 2 * q @ q.t()


def hra_matrix(u: torch.Tensor, apply_gs: bool, reverse: bool = False) -> torch.Tensor:
    """The `[n, n]` orthogonal matrix of one adapter (`reverse`: its inverse, for unmerging)."""
    if apply_gs:
        return gram_schmidt_reflection(u)
    return householder_product(u, reverse=reverse)
