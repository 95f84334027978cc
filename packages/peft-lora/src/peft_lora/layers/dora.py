"""DoRA (weight-decomposed LoRA): the magnitude vector and its math.

With `V = W + s·B@A` (in the base layer's (out, in, ...) layout) and `n = ‖V‖₂` per output channel
(detached, as in the paper's section 4.3), DoRA computes

    y = base(x) + (m/n − 1)·(base(x) − bias) + (m/n)·s·B(A(x))          (Linear, Conv)
    y = (m/n)·emb(x) + (m/n)·s·emb(x, Aᵀ)@Bᵀ                             (Embedding, per column)

and merges as `W' = (m/n) ⊙ (W + s·B@A)`, per output channel. The operation order follows Hugging
Face PEFT 0.21.2 so that outputs match it exactly.
"""

from __future__ import annotations

import torch
from torch import nn


class DoraMagnitude(nn.Module):
    """Holds one adapter's magnitude `m` as `.weight` (model key `lora_magnitude_vector.<name>.weight`).

    Saved files use `lora_magnitude_vector` without `.weight` (Hugging Face's legacy layout); the layer's
    `adapter_tensors` takes care of that.
    """

    def __init__(self, magnitude: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(magnitude, requires_grad=True)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.weight.shape)}"


def linear_weight_norm(
    weight: torch.Tensor, lora_weight: torch.Tensor, scaling: float, fan_in_fan_out: bool
) -> torch.Tensor:
    """Row norms of `W + s·ΔW` for a Linear / Conv1D weight; `lora_weight` is in (out, in) layout."""
    weight = weight.T if fan_in_fan_out else weight
    weight = weight + scaling * lora_weight
    return torch.linalg.norm(weight, dim=1).to(weight.dtype)


def embedding_weight_norm(weight: torch.Tensor, lora_weight: torch.Tensor, scaling: float) -> torch.Tensor:
    """Per-dimension norms for an embedding `W [num, dim]`; `lora_weight` is `B@A` in (dim, num) layout."""
    weight = weight.T + scaling * lora_weight
    return torch.linalg.norm(weight, dim=1).to(weight.dtype)


def conv_weight_norm(weight: torch.Tensor, lora_weight: torch.Tensor, scaling: float) -> torch.Tensor:
    """Per-output-channel norms of a conv weight, shaped (1, out, 1, ...) like the saved magnitude."""
    weight = weight + scaling * lora_weight
    dims = tuple(range(1, weight.dim()))
    return weight.norm(p=2, dim=dims, keepdim=True).transpose(1, 0)


def conv_lora_weight(lora_a: torch.Tensor, lora_b: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """`B@A` for a conv LoRA (A: base kernel, B: 1x1), reshaped to the base weight's shape."""
    r = lora_a.shape[0]
    return torch.mm(lora_b.view([-1, r]), lora_a.view([r, -1])).reshape(shape)


def magnitude_for_linear(
    weight: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float, fan_in_fan_out: bool
) -> torch.Tensor:
    """Initial magnitude `‖W + s·B@A‖` per output row (computed in fp32 if the adapter is fp16)."""
    return linear_weight_norm(weight.to(lora_a.device), lora_product(lora_a, lora_b), scaling, fan_in_fan_out)


def lora_product(lora_a: torch.Tensor, lora_b: torch.Tensor) -> torch.Tensor:
    """`B @ A` for an initial DoRA magnitude: float16 factors are multiplied in float32, then rounded back."""
    if lora_a.dtype != torch.float16:
        return lora_b @ lora_a
    return (lora_b.float() @ lora_a.float()).half()
