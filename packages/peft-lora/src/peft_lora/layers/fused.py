"""The LoRA update of a training step as one autograd function: `result + s·B(A(dropout(x)))`.

Composed of ordinary modules, a training step keeps for backward the dropped-out input of every
adapted layer (a full activation per target: q, k and v each hold their own copy), the fp32 copy
of a half-precision input when the adapter is kept in fp32, and the scaled (tokens, out) product.
This function keeps only what backward reads: the input as the layer received it (the base layer
holds it already), the dropout mask as booleans (a quarter of an fp32 copy) and the rank-r
activation `A(dropout(x))`; the dropped-out input is rebuilt from the mask in backward. The sum is
formed by one `addmm` into the base output, so the (tokens, out) product is never materialised.

Without dropout the outputs and gradients have Hugging Face PEFT's bits (the products are rounded
in the same order; tests/test_fast_paths.py compares them). With dropout the mask is drawn with
`bernoulli_` rather than `nn.Dropout`'s kernel, so the random stream differs from HF's; given the
same mask, gradients equal the composed modules' (tests/test_fused_update.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import exact_scale

# adapter dtypes the fused update runs in (half precision adapters keep the composed path: its
# roundings are the ones users tuned their learning rates against)
_FUSED_DTYPES = (torch.float32, torch.float64)


def dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Which elements dropout keeps (probability 1 - p), as booleans."""
    return torch.empty(x.shape, dtype=torch.bool, device=x.device).bernoulli_(1.0 - p)


def _dropped(x: torch.Tensor, mask: torch.Tensor | None, keep_scale: float) -> torch.Tensor:
    if mask is None:
        return x
    return x * mask * keep_scale


class _LoraUpdate(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        result: torch.Tensor,
        x: torch.Tensor,
        weight_a: torch.Tensor,
        weight_b: torch.Tensor,
        scaling: float,
        mask: torch.Tensor | None,
        keep_scale: float,
    ) -> torch.Tensor:
        dtype = weight_a.dtype
        xd = _dropped(x.to(dtype), mask, keep_scale)
        hidden = xd.reshape(-1, xd.shape[-1]) @ weight_a.t()  # (tokens, r)
        del xd
        out_features = weight_b.shape[0]
        if scaling == 1 or exact_scale(scaling):  # scaling the accumulated product is exact: one addmm
            out = torch.addmm(result.reshape(-1, out_features), hidden, weight_b.t(), alpha=scaling)
        else:  # round the product, then the scaled product, then the sum, as the composed modules do
            out = result.reshape(-1, out_features) + (hidden @ weight_b.t()).mul_(scaling)
        ctx.save_for_backward(x, mask, hidden, weight_a, weight_b)
        ctx.scaling, ctx.keep_scale = scaling, keep_scale
        return out.view(result.shape)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, mask, hidden, weight_a, weight_b = ctx.saved_tensors
        scaling, keep_scale = ctx.scaling, ctx.keep_scale
        grad2d = grad_out.reshape(-1, grad_out.shape[-1]).to(weight_b.dtype)
        grad_result = grad_out if ctx.needs_input_grad[0] else None
        grad_b = grad_a = grad_x = None
        # the gradient reaching B(A(x)) is scaled first, as in the composed modules (same roundings)
        scaled = grad2d if scaling == 1 else grad2d * scaling
        if ctx.needs_input_grad[3]:
            grad_b = scaled.t() @ hidden
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_hidden = scaled @ weight_b  # (tokens, r)
            if ctx.needs_input_grad[2]:
                xd = _dropped(x.to(weight_a.dtype), mask, keep_scale)
                grad_a = grad_hidden.t() @ xd.reshape(-1, xd.shape[-1])
                del xd
            if ctx.needs_input_grad[1]:
                grad_x = _dropped((grad_hidden @ weight_a).view(*x.shape[:-1], -1), mask, keep_scale).to(x.dtype)
        return grad_result, grad_x, grad_a, grad_b, None, None, None


def fused_update(
    result: torch.Tensor,
    x: torch.Tensor,
    lora_a: nn.Linear,
    lora_b: nn.Linear,
    scaling: float,
    dropout: nn.Module,
) -> torch.Tensor | None:
    """`result + scaling·lora_b(lora_a(dropout(x)))` through `_LoraUpdate`, or None where the fused
    form would not be the same computation (the caller then composes the modules):
    a bias on lora_B, a tensor scaling (compiled hotswap), a dropout other than `nn.Dropout`,
    half-precision adapters, or an output of another dtype or layout."""
    weight_a, weight_b = lora_a.weight, lora_b.weight
    if (
        lora_a.bias is not None
        or lora_b.bias is not None
        or isinstance(scaling, torch.Tensor)
        or weight_a.dtype not in _FUSED_DTYPES
        or weight_b.dtype != weight_a.dtype
        or result.dtype != weight_a.dtype
        or result.shape[:-1] != x.shape[:-1]
        or result.shape[-1] != weight_b.shape[0]
        or x.dim() < 2
        or not result.is_contiguous()
    ):
        return None
    if isinstance(dropout, nn.Identity):
        mask, keep_scale = None, 1.0
    elif type(dropout) is nn.Dropout and not dropout.inplace:
        p = float(dropout.p)
        if not dropout.training or p == 0.0:
            mask, keep_scale = None, 1.0
        elif p >= 1.0:
            return None  # everything dropped: the composed path gives the exact zeros
        else:
            mask, keep_scale = dropout_mask(x, p), 1.0 / (1.0 - p)
    else:
        return None
    return _LoraUpdate.apply(result, x, weight_a, weight_b, float(scaling), mask, keep_scale)
