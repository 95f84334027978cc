"""`QuantizedLinear`: LoRA (and DoRA) on a linear layer whose weight is stored quantized.

The adapter is an ordinary full-precision low-rank pair; the packed base weight is only ever read
through `dequantize_weight()` (DoRA norms, merging) and written through `requantize_weight()`
(merge / unmerge: dequantize, add or remove the delta, quantize again, as Hugging Face PEFT does).
Requantizing rounds: a merged model is close to, not equal to, the adapter's output, and unmerging
does not restore the original packed weight bit for bit (see docs/qlora.md for measured errors).

Backends subclass this with their library's dequantize/requantize and their Hugging Face PEFT
counterpart's order of operations in the forward pass (`cast_delta_before_add`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from peft_core import BatchPlan
from torch import nn

from ..config import init_family
from ..layers.linear import Linear

# init_lora_weights families that rewrite or read the base weight as a float matrix at creation
_WEIGHT_REWRITING_INITS = ("pissa", "olora", "mica", "orthogonal", "corda", "lora_ga", "loftq")


class QuantizedLinear(Linear):
    """LoRA on a quantized linear layer; see the module docstring."""

    # human-readable backend name, used in errors and warnings ("bitsandbytes 4-bit", ...)
    backend: ClassVar[str] = "quantized"
    # Hugging Face PEFT's order of operations: bitsandbytes layers cast the adapter's output to the
    # base output's dtype before adding it; the others add in the promoted dtype and cast the sum.
    cast_delta_before_add: ClassVar[bool] = False
    # whether the backend can merge a `lora_bias` (its layer has a float bias Hugging Face PEFT adds to)
    supports_lora_bias: ClassVar[bool] = True
    # the warning a merge gives (None: none), for backends whose requantization visibly rounds
    merge_warning: ClassVar[str | None] = None

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.__dict__.update(fan_in_fan_out=False, is_target_conv_1d_layer=False)

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        return int(base.in_features), int(base.out_features)

    # -- backend hooks ----------------------------------------------------------------------
    def dequantize_weight(self) -> torch.Tensor:
        """The base weight as a float (out, in) tensor."""
        raise NotImplementedError

    def requantize_weight(self, weight: torch.Tensor) -> None:
        """Quantize the float (out, in) `weight` into the base layer, with its quantization settings."""
        raise NotImplementedError

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        if config.lora_bias and not self.supports_lora_bias:
            raise ValueError(
                f"lora_bias=True is not supported on {self.backend} layers ({type(self).__name__}); set it to False."
            )
        family = _init_family(config.init_lora_weights)
        if family in _WEIGHT_REWRITING_INITS:
            raise ValueError(
                f"init_lora_weights={config.init_lora_weights!r} needs the base weight in float precision, but the "
                f"target is a {self.backend} layer ({type(self.get_base_layer()).__name__}). Initialise the adapter "
                f"on the unquantized model and quantize the residual model afterwards, or use the default init."
            )
        super().update_layer(adapter_name, r, lora_alpha, config)

    def _base_weight(self) -> torch.Tensor:
        return self.dequantize_weight()

    def _move_adapter_to_device_of_base_layer(self, adapter_name: str) -> None:
        """Device of the packed weight; dtype: the layer's `compute_dtype` when it has one (bitsandbytes
        4-bit, HQQ), as Hugging Face PEFT does (a new adapter is rounded through it once; the fp32
        autocast that follows keeps the rounded values)."""
        super()._move_adapter_to_device_of_base_layer(adapter_name)
        dtype = getattr(self.get_base_layer(), "compute_dtype", None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            return
        for attr in self.adapter_layer_names:
            container = self._container(attr)
            entry = container[adapter_name] if adapter_name in container else None
            if isinstance(entry, nn.Module) and not any(p.is_meta for p in entry.parameters()):
                entry.to(dtype=dtype)

    # -- forward ----------------------------------------------------------------------------
    def _apply_adapter(self, name: str, x: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
        """Never in place under autograd: the base output may be a view made inside the quantization
        library's autograd function, which must not be modified (Hugging Face PEFT clones it)."""
        if not self.use_dora[name] and self._accumulate_delta(name, x, result):
            return result  # inference only (see Linear._accumulate_delta)
        delta = self._delta(name, x, result)
        if self.cast_delta_before_add and delta.dtype != result.dtype:
            delta = delta.to(result.dtype)
        return result + delta

    def _mixed_batch_forward(self, x: torch.Tensor, result: torch.Tensor, plan: BatchPlan) -> torch.Tensor:
        if torch.is_grad_enabled() and result.requires_grad:
            result = result.clone()  # rows are updated in place below
        return super()._mixed_batch_forward(x, result, plan)

    # -- merging ----------------------------------------------------------------------------
    def _merged_weight_and_bias(self, adapter_name: str, check: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The dequantized weight with the adapter added (DoRA: rescaled) and the merged bias; with
        `check`, refuse non-finite results (DoRA's recorded norms are put back then)."""
        self._check_mergeable(adapter_name)
        norms_before = dict(self._dora_norms)
        weight = self.dequantize_weight()
        if self.use_dora.get(adapter_name):
            new_weight = self._dora_merged_weight(adapter_name, weight)
        else:
            new_weight = self._add_delta(weight, self.get_delta_weight(adapter_name))
        new_bias = self._merged_bias(adapter_name)
        if check:
            try:
                self._check_finite(new_weight, adapter_name)
                if new_bias is not None:
                    self._check_finite(new_bias, adapter_name)
            except ValueError:
                self._dora_norms = norms_before
                raise
        return new_weight, new_bias

    def check_safe_merge(self, adapter_names: Sequence[str] | None = None) -> None:
        """safe_merge's first pass without touching the base layer: merging requantizes into a new
        parameter, which the core's trial-on-copies pass could not put back."""
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        norms_before = dict(self._dora_norms)
        try:
            with torch.no_grad():
                for name in names:
                    if self.has_adapter(name) and name not in self.merged_adapters:
                        self._merged_weight_and_bias(name, check=True)
        finally:
            self._dora_norms = norms_before

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        """Dequantize, add the adapter (DoRA: rescale), check (safe_merge) and requantize. Nothing in the
        base layer changes before the new weight is known to be finite."""
        if self.merge_warning is not None:
            warnings.warn(self.merge_warning, UserWarning, stacklevel=3)
        with torch.no_grad():
            new_weight, new_bias = self._merged_weight_and_bias(adapter_name, check=safe_merge)
            self.requantize_weight(new_weight)
            if new_bias is not None:
                self.get_base_layer().bias.data = new_bias

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        with torch.no_grad():
            weight = self.dequantize_weight()
            if self.use_dora.get(adapter_name):
                new_weight = self._unmerged_weight(adapter_name, weight)
                self._dora_norms.pop(adapter_name, None)
            else:
                new_weight = self._add_delta(weight, -self.get_delta_weight(adapter_name))
            self.requantize_weight(new_weight)
            if self.lora_bias.get(adapter_name):
                base = self.get_base_layer()
                base.bias.data -= self.lora_B[adapter_name].bias * self.scaling[adapter_name]

    def _add_delta(self, weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """`weight + delta` on the dequantized weight, in the delta's dtype and device (HF's order)."""
        return weight.to(device=delta.device) + delta


def _init_family(init: object) -> str:
    return init_family(init) or "default"
