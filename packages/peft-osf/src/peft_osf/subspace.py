"""The SVD split of a weight and the projection that keeps training out of the frozen subspace.

`W = U S Vᵀ` (thin SVD, computed in fp32). The top `k` singular directions (`U_high`, `S_high`,
`V_high`) stay frozen; the rest (`U_low`, `S_low`, `V_low`) are trained. Gradients of `U_low` and
`V_low` are projected onto the orthogonal complement of `U_high` / `V_high`, so an update never
rotates into the directions the base model relies on most.

Where a factor is square, the complement of the high part is spanned exactly by the low part's
initial value (`I - U_high U_highᵀ = U_low₀ U_low₀ᵀ`), so only the non-square side keeps its high part.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SVDSplit:
    u_high: torch.Tensor
    v_high: torch.Tensor
    u_low: torch.Tensor
    s_low: torch.Tensor
    v_low: torch.Tensor


def split_weight(weight: torch.Tensor, top_k: int) -> SVDSplit:
    """The SVD of `weight` (in fp32) cut after the `top_k` largest singular values, in the weight's dtype."""
    u, s, vt = torch.linalg.svd(weight.detach().to(torch.float32), full_matrices=False)
    k = min(top_k, s.shape[0])

    def part(t: torch.Tensor) -> torch.Tensor:
        return t.contiguous().to(device=weight.device, dtype=weight.dtype)

    return SVDSplit(u_high=part(u[:, :k]), v_high=part(vt[:k, :]), u_low=part(u[:, k:]), s_low=part(s[k:]), v_low=part(vt[k:, :]))


class _ProjectGradient(torch.autograd.Function):
    """Identity forward; the backward projects the gradient away from a frozen subspace.

    `side` "left" (for `U_low [out, r]`): with `high` given, `g - H (Hᵀ g)`; else `L (Lᵀ g)` with the
    initial low part `L`. `side` "right" (for `V_low [r, in]`): `g - (g Hᵀ) H`, or `(g Lᵀ) L`.
    """

    @staticmethod
    def forward(ctx, param: torch.Tensor, basis: torch.Tensor, complement: bool, left: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(basis)
        ctx.complement, ctx.left = complement, left
        return param.view_as(param)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (basis,) = ctx.saved_tensors
        basis = basis.to(grad.dtype)
        if ctx.left:
            inside = basis @ (basis.transpose(0, 1) @ grad)
        else:
            inside = (grad @ basis.transpose(0, 1)) @ basis
        return (grad - inside if ctx.complement else inside), None, None, None


def project_gradient(param: torch.Tensor, high: torch.Tensor | None, low_init: torch.Tensor, left: bool) -> torch.Tensor:
    """`param` for the forward pass, with its gradient kept orthogonal to the frozen subspace: removed
    along `high` where it is stored, else kept along `low_init` (which spans the complement exactly)."""
    if not param.requires_grad:
        return param
    if high is not None:
        return _ProjectGradient.apply(param, high, True, left)
    return _ProjectGradient.apply(param, low_init, False, left)
