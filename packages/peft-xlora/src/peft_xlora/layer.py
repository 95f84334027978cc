"""X-LoRA's view of the LoRA layers that hold its experts.

The experts are ordinary LoRA adapters, loaded by peft-lora into its own layers; X-LoRA gives those
layers these subclasses, whose forward pass mixes the experts with the current call's scalings:
`y = base(x) + Σ_n B_n(A_n(dropout(x · s_n))) · scale_n · global_weight` (for embeddings the weight
multiplies the rows after `A`). Outside an X-LoRA pass (or with adapters disabled) the layer is its base
layer: experts act only through X-LoRA.

The call's scalings reach the layers through a context variable set by `XLoraModel` around each
forward pass of the base model (the scaling pass and the real one).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import torch
from peft_lora.layers import Embedding, Linear

from .classifier import layer_scalings
from .config import XLoraConfig


@dataclass(frozen=True)
class XLoraCall:
    """What one pass of the base model mixes: adapter, its experts in order, scalings, options."""

    adapter: str
    experts: tuple[str, ...]
    scalings: torch.Tensor  # [batch, tokens, n_layers, n_experts]
    config: XLoraConfig


CURRENT_CALL: contextvars.ContextVar[XLoraCall | None] = contextvars.ContextVar("peft_xlora_call", default=None)


class _XLoraMixin:
    """The X-LoRA forward pass shared by the Linear and Embedding layers: the base layer, plus the
    experts mixed by `_mix` during an X-LoRA pass of the adapter whose experts this layer holds."""

    # adapter -> index of this layer among the layers holding that adapter's experts (module order)
    xlora_layer_number: dict[str, int]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        call = CURRENT_CALL.get()
        numbers = self.__dict__.get("xlora_layer_number", {})
        result = self.base_layer(x, *args, **kwargs)  # type: ignore[attr-defined]
        if call is None or self.disable_adapters or call.adapter not in numbers:  # type: ignore[attr-defined]
            return result
        return self._mix(x, result, call, layer_scalings(call.scalings, numbers[call.adapter], call.config))

    def _mix(self, x: torch.Tensor, result: torch.Tensor, call: XLoraCall, weights: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class XLoraLinear(_XLoraMixin, Linear):
    def _mix(self, x: torch.Tensor, result: torch.Tensor, call: XLoraCall, weights: torch.Tensor) -> torch.Tensor:
        out_dtype = x.dtype
        for n, expert in enumerate(call.experts):
            if expert not in self.lora_A:
                continue
            x = x.to(self.lora_A[expert].weight.dtype)
            scaled = x * weights[:, :, n].unsqueeze(-1)
            result = result + self._delta(expert, scaled, None) * call.config.global_scaling_weight
        return result.to(out_dtype)


class XLoraEmbedding(_XLoraMixin, Embedding):
    def _mix(self, x: torch.Tensor, result: torch.Tensor, call: XLoraCall, weights: torch.Tensor) -> torch.Tensor:
        out_dtype = result.dtype  # fp32 experts on a half-precision base: hand the base's dtype on
        embed_scale = self._embed_scale()
        for n, expert in enumerate(call.experts):
            if expert not in self.lora_embedding_A:
                continue
            after_a = self._embed(x, self.lora_embedding_A[expert].T) * weights[:, :, n].unsqueeze(-1)
            out = (after_a @ self.lora_embedding_B[expert].T) * self.scaling[expert] * call.config.global_scaling_weight
            if embed_scale is not None:
                out = out * embed_scale.to(out.dtype)
            result = result + out
        return result.to(out_dtype)


XLORA_CLASSES = {Linear: XLoraLinear, Embedding: XLoraEmbedding}
