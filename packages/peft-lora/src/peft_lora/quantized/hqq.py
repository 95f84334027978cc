"""LoRA on HQQ (half-quadratic quantization) layers, `hqq.core.quantize.HQQLinear`. Imported only when a
model holds one (needs `peft-lora[hqq]`).

Forward as Hugging Face PEFT's `HqqLoraLinear` (adapter output added in the promoted dtype, the sum
cast back). Merging dequantizes, adds the delta and quantizes into a new `HQQLinear` with the old
layer's quantization settings, compute dtype and device.
"""

from __future__ import annotations

import copy

import torch
from hqq.core.quantize import HQQLinear
from peft_core.tuners.construction import register_module
from torch import nn

from .base import QuantizedLinear


class HqqLinear(QuantizedLinear):
    backend = "HQQ"
    supports_lora_bias = False

    def dequantize_weight(self) -> torch.Tensor:
        return self.get_base_layer().dequantize()

    def requantize_weight(self, weight: torch.Tensor) -> None:
        old = self.get_base_layer()
        settings = {**copy.deepcopy(old.quant_config), "offload_meta": old.offload_meta}
        new = HQQLinear(None, settings, compute_dtype=old.compute_dtype, device=old.device)
        settings.pop("offload_meta", None)
        new.quantize(weight, **settings)
        if old.bias is not None:
            new.bias = old.bias
        register_module(self, "base_layer", new)


def dispatch(module: nn.Module) -> type[QuantizedLinear] | None:
    return HqqLinear if isinstance(module, HQQLinear) else None
