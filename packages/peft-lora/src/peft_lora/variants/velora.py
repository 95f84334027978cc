"""VeLoRA (`velora_config`, arXiv 2405.17991): LoRA whose A layer keeps its input for the backward pass
compressed to one number per feature group.

The input (`in` features) is split into `num_groups` groups; the backward pass needs `x` only for A's
weight gradient, so the forward pass stores each group's projection on a unit vector `v` (the
`lora_velora_embed` buffer, saved with the adapter) and the backward pass rebuilds `x ≈ (x·v)·v·scale`.
`v` is the normalised mean group of the current batch (`batch_average`), of the first batch
(`batch_average_once`) or random. Outputs are exactly LoRA's; only A's gradient is approximate.
Hugging Face PEFT 0.21.2's algorithm and file layout.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from peft_core.tuners.buffers import BufferDict

from . import LoraVariant

EMBED = "lora_velora_embed"


def group_dim(in_features: int, num_groups: int) -> int:
    return (in_features + num_groups - 1) // num_groups


def grouped(x: torch.Tensor, num_groups: int) -> torch.Tensor:
    """`x [..., in]` as `[tokens, num_groups, group_dim]` (zero-padded to a multiple of num_groups)."""
    size = group_dim(x.shape[-1], num_groups)
    padded = num_groups * size
    if x.shape[-1] != padded:
        x = F.pad(x, (0, padded - x.shape[-1]))
    return x.reshape(-1, num_groups, size)


def unit(vector: torch.Tensor) -> torch.Tensor:
    vector = vector.float()
    norm = torch.linalg.vector_norm(vector)
    if norm == 0:
        vector = torch.ones_like(vector)
        norm = torch.linalg.vector_norm(vector)
    return vector / norm


class _CompressedLinear(torch.autograd.Function):
    """`F.linear(x, weight, bias)`, saving `x` compressed for the weight gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, embed, num_groups, scale):  # type: ignore[override]
        output = F.linear(x, weight, bias)
        ctx.input_shape, ctx.input_dtype, ctx.in_features = tuple(x.shape), x.dtype, x.shape[-1]
        ctx.scale, ctx.bias_dtype = scale, None if bias is None else bias.dtype
        compressed = torch.einsum("tgd,d->tg", grouped(x, num_groups), embed.to(dtype=x.dtype))
        ctx.save_for_backward(compressed, weight, embed)
        return output

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        compressed, weight, embed = ctx.saved_tensors
        dtype = grad_output.dtype
        grad_2d = grad_output.reshape(-1, grad_output.shape[-1]).to(dtype)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = (grad_2d @ weight.to(dtype)).reshape(ctx.input_shape).to(ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            rebuilt = compressed.to(dtype).unsqueeze(-1) * embed.to(dtype).view(1, 1, -1)
            rebuilt = rebuilt.reshape(-1, compressed.shape[-1] * embed.numel())[:, : ctx.in_features] * ctx.scale
            grad_weight = (grad_2d.transpose(0, 1) @ rebuilt).to(dtype=weight.dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_2d.sum(dim=0).to(dtype=ctx.bias_dtype)
        return grad_input, grad_weight, grad_bias, None, None, None


class VeloraVariant(LoraVariant):
    option, label = "velora_config", "VeLoRA"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.initialized = settings.init_type == "random"

    def init(self, layer: Any, name: str, config: Any) -> None:
        base = layer.get_base_layer().weight
        size = group_dim(layer.in_features, self.settings.num_groups)
        if self.settings.init_type == "random":
            embed = unit(torch.randn(size, device=base.device, dtype=base.dtype)).to(dtype=base.dtype)
        else:
            embed = torch.zeros(size, device=base.device, dtype=base.dtype)
        layer._own_container(EMBED, BufferDict)[name] = embed  # saved (persistent) buffers

    def _update_embed(self, layer: Any, name: str, x: torch.Tensor) -> None:
        if self.settings.init_type == "random" or (self.settings.init_type == "batch_average_once" and self.initialized):
            return
        with torch.no_grad():
            groups = grouped(x.detach(), self.settings.num_groups).reshape(-1, group_dim(x.shape[-1], self.settings.num_groups))
            embed = unit(groups.mean(dim=0))
            target = layer.lora_velora_embed[name]
            layer.lora_velora_embed[name] = embed.to(device=target.device, dtype=target.dtype)
            self.initialized = True

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        x = layer._cast_input(x, lora_a.weight)
        x = layer.lora_dropout[name](x)
        if layer.training and torch.is_grad_enabled():
            self._update_embed(layer, name, x)
            after_a = _CompressedLinear.apply(
                x, lora_a.weight, lora_a.bias, layer.lora_velora_embed[name], self.settings.num_groups, self.settings.scale
            )
        else:
            after_a = lora_a(x)
        return result + lora_b(after_a) * layer.scaling[name]
