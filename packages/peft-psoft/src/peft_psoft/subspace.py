"""The frozen principal subspace of a weight: PSOFT's `A [r, in]` and `B [out, r]`.

From the SVD `W = U S Vh` (in fp32): "psoft_init" takes `A = Vh[:r]` (orthonormal rows) and
`B = U[:, :r] · S[:r] / scaling`; "pissa_init" splits `√(S / scaling)` between both. The "lowrank"
backend runs `torch.svd_lowrank` under a forked RNG seeded with `random_seed`, so the same weight
always gives the same factors (the global RNG is left as it was).
"""

from __future__ import annotations

import torch

from peft_core import ConfigError


def svd_factors(weight: torch.Tensor, r: int, mode: str, niter: int, seed: int) -> tuple[torch.Tensor, ...]:
    """(U_r [out, r], S_r [r], Vh_r [r, in]) of an fp32 `[out, in]` weight."""
    if mode == "full":
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        return u[:, :r], s[:r], vh[:r, :]
    devices = {"devices": []} if weight.device.type == "cpu" else {"devices": [weight.device], "device_type": weight.device.type}
    with torch.random.fork_rng(**devices):
        torch.manual_seed(seed)
        u, s, v = torch.svd_lowrank(weight, q=r, niter=niter)
    return u[:, :r], s[:r], v[:, :r].t()


def subspace(
    weight: torch.Tensor, r: int, scaling: float, init: str, mode: str, niter: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [r, in], B [out, r]) for a `[out, in]` weight, contiguous fp32 tensors (float64 for a float64 weight)."""
    if not weight.is_floating_point():
        raise ConfigError(
            f"PSOFT computes its subspace from a floating-point weight, got {weight.dtype}; create the adapter "
            f"before quantizing the model."
        )
    # fp32 (as HF) for fp32 and half-precision weights; a float64 model keeps float64
    compute = torch.float64 if weight.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        u, s, vh = svd_factors(weight.to(compute), r, mode, niter, seed)
        s = s / scaling
        if init == "psoft_init":
            a, b = vh, u @ torch.diag(s)
        else:
            root = torch.sqrt(s)
            a, b = torch.diag(root) @ vh, u @ torch.diag(root)
        return a.contiguous().detach(), b.contiguous().detach()
