"""FRoD's shared bases and sparse positions, built as Hugging Face PEFT 0.21.2 builds them.

Layers are grouped by role (`category_of`: the last two name components, e.g. `self_attn_q_proj`)
and ordered by block index (`block_index_of`). A role's basis `V [in, in]` comes from its stacked
`[out, in]` weights: the right singular vectors when there are fewer rows than columns, otherwise
`Rᵀ E` from the QR factorisation and the eigenvectors `E` of the averaged ridge-regularised inverse
Gram matrices of the row blocks. Per role, `nnz = int(in² · sparse_rate)` off-diagonal positions
(at least one when the rate is positive) are drawn from one CPU generator seeded with the key, roles
in sorted order.
"""

from __future__ import annotations

import torch


def category_of(key: str) -> str:
    parts = key.split(".")
    if len(parts) == 1:
        return parts[0]
    if parts[-2].isdigit():
        return parts[-1]
    category = f"{parts[-2]}_{parts[-1]}"
    if category == "output_dense" and len(parts) >= 3 and parts[-3] == "attention":
        return "attention_output"  # BERT's attention output, apart from the MLP's `output.dense`
    return category


def block_index_of(key: str, fallback: int) -> int:
    """The number after a `layers` component, else the first numeric component, else `fallback`."""
    parts = key.split(".")
    if "layers" in parts:
        try:
            return int(parts[parts.index("layers") + 1])
        except (ValueError, IndexError):
            pass
    return next((int(p) for p in parts if p.isdigit()), fallback)


def shared_basis(matrices: list[torch.Tensor], regularization_alpha: float) -> torch.Tensor:
    stacked = torch.cat(matrices, dim=0)
    if stacked.shape[0] < stacked.shape[1]:
        return torch.linalg.svd(stacked, full_matrices=True)[2].T
    q, r = torch.linalg.qr(stacked)
    dim = r.shape[1]
    average = torch.zeros((dim, dim), dtype=r.dtype)
    start = 0
    for matrix in matrices:
        block = q[start : start + matrix.shape[0], :]
        start += matrix.shape[0]
        average += torch.linalg.inv(block.T @ block + regularization_alpha * torch.eye(dim, dtype=r.dtype))
    average /= len(matrices)
    return r.T @ torch.linalg.eigh(average)[1]


def sparse_positions(in_dim: int, sparse_rate: float, generator: torch.Generator) -> torch.Tensor:
    """`[2, nnz]` (row, column) off-diagonal positions of S (int64)."""
    rows, cols = torch.meshgrid(torch.arange(in_dim), torch.arange(in_dim), indexing="ij")
    pairs = torch.stack([rows.flatten(), cols.flatten()], dim=1)
    off_diagonal = pairs[pairs[:, 0] != pairs[:, 1]]
    nnz = min(int(in_dim * in_dim * sparse_rate), off_diagonal.shape[0])
    if sparse_rate > 0 and off_diagonal.shape[0] > 0:
        nnz = max(1, nnz)
    if not nnz:
        return torch.empty(2, 0, dtype=torch.long)
    chosen = torch.randperm(off_diagonal.shape[0], generator=generator)[:nnz]
    return off_diagonal[chosen].t().contiguous()


def factor_weight(basis: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U [out, in], λ [in]) with `W = U diag(λ) Vᵀ`, U's columns of unit norm (float64 solve, fp32 result)."""
    w = weight.detach().to(torch.float64).cpu()
    v = basis.detach().to(torch.float64).cpu()
    try:
        coefficients = torch.linalg.solve(v, w.T).T
    except RuntimeError:
        coefficients = w @ torch.linalg.pinv(v, rtol=1e-6).T
    scale = torch.linalg.norm(coefficients, dim=0)
    u = torch.zeros_like(coefficients)
    kept = scale > 1e-12
    u[:, kept] = coefficients[:, kept] / scale[kept]
    return u.float(), scale.float()
