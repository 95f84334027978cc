"""LoRA on bitsandbytes layers: `Linear4bit` (NF4/FP4, double quantization, any compute dtype) and
`Linear8bitLt` (LLM.int8()). Imported only when a model holds one of them (needs `peft-lora[bnb]`).

The forward pass follows Hugging Face PEFT's bitsandbytes layers: the adapter's output is cast to the
base output's dtype, then added. Merging dequantizes the weight, adds the delta in fp32 and quantizes
again with the layer's own settings (`Params4bit` keeps blocksize, quant type, double quantization and
storage dtype; `Int8Params` keeps `has_fp16_weights`), which rounds: see docs/qlora.md.
"""

from __future__ import annotations

import copy

import bitsandbytes as bnb
import torch

from .base import QuantizedLinear


class Linear4bit(QuantizedLinear):
    backend = "bitsandbytes 4-bit"
    cast_delta_before_add = True
    merge_warning = "Merging LoRA into a 4-bit layer requantizes its weight: outputs change slightly (rounding)."

    def dequantize_weight(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        data, state = weight.data, weight.quant_state
        if getattr(state, "packing_format_for_cpu", False):
            # On CPUs with AVX512-BF16, bitsandbytes repacks the weight in place at the first inference
            # forward; dequantize_4bit reads only the canonical layout (on the packed one it returns
            # garbage), so unpack a copy first (the layer keeps its fast layout; the inverse rewrites the
            # state object it is given, hence the deep copy).
            data, state = bnb.functional._convert_weight_packed_for_cpu_inverse(data, copy.deepcopy(state))
        return bnb.functional.dequantize_4bit(data, state)

    def requantize_weight(self, weight: torch.Tensor) -> None:
        base = self.get_base_layer()
        old = base.weight
        settings = {k: v for k, v in old.__dict__.items() if not k.startswith("_") and k != "data"}
        settings.update(requires_grad=False, bnb_quantized=False)
        settings.pop("quant_state", None)  # recomputed by the quantization below
        base.weight = bnb.nn.Params4bit(weight.to("cpu"), **settings).to(old.device)


class Linear8bitLt(QuantizedLinear):
    backend = "bitsandbytes 8-bit"
    cast_delta_before_add = True
    merge_warning = "Merging LoRA into an 8-bit layer requantizes its weight: outputs change slightly (rounding)."

    def _row_scales(self) -> torch.Tensor:
        base = self.get_base_layer()
        state, weight = base.state, base.weight
        if state.SCB is None:
            state.SCB = weight.SCB  # before the first forward the scales live on the weight
        return state.SCB

    def dequantize_weight(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        return bnb.functional.int8_vectorwise_dequant(weight.data, self._row_scales().to(weight.device))

    def requantize_weight(self, weight: torch.Tensor) -> None:
        base = self.get_base_layer()
        old = base.weight
        base.weight = bnb.nn.Int8Params(
            weight.to("cpu"), requires_grad=False, has_fp16_weights=old.has_fp16_weights
        ).to(old.device)
        base.state.reset_grads()  # the next forward takes the new row scales from the weight

    def _add_delta(self, weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return weight.to(delta.dtype).to(delta.device) + delta


def dispatch(module: torch.nn.Module) -> type[QuantizedLinear] | None:
    if isinstance(module, bnb.nn.Linear4bit):
        return Linear4bit
    if isinstance(module, bnb.nn.Linear8bitLt):
        return Linear8bitLt
    return None
