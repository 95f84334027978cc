"""LoRA for `nn.Linear` and transformers' GPT-2 `Conv1D` (weight stored (in, out): `fan_in_fan_out`).

y = base(x) + B(A(dropout(x))) · s            A: Linear(in → r), B: Linear(r → out[, bias])
merged:  W += s·B@A   (Conv1D storage: W += (s·B@A)ᵀ);  bias += s·lora_B.bias with lora_bias
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from peft_core.tuners.construction import register_module
from peft_core.tuners.precision import round_back, upcast_half_on_cpu
from torch import nn

from .. import init as lora_init
from ..inits.layer import DATA_DRIVEN, init_from_data
from .base import (
    LoraLayer,
    _scaled,
    add_product_,
    exact_scale,
    is_plain_linear,
    is_transformers_conv1d,
    needs_autograd,
    scaled_product,
    warn_no_bias_for_lora_bias,
)
from .dora import linear_weight_norm, magnitude_for_linear
from .fused import fused_update
from .grouped import grouped_delta_, plain_factors


# dtypes whose GEMM rounds its result once, to the same dtype (see Linear._fusable_b)
_FUSED_DTYPES = (torch.float32, torch.float64)


def _t(weight: torch.Tensor, fan_in_fan_out: bool) -> torch.Tensor:
    return weight.T if fan_in_fan_out else weight


class Linear(LoraLayer):
    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        conv1d = is_transformers_conv1d(self.get_base_layer())
        self.__dict__.update(fan_in_fan_out=conv1d, is_target_conv_1d_layer=conv1d)

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        if isinstance(base, nn.Linear):
            return base.in_features, base.out_features
        in_features, out_features = base.weight.shape  # Conv1D: (in, out)
        return int(in_features), int(out_features)

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        base = self.get_base_layer()
        if config.lora_bias:
            warn_no_bias_for_lora_bias(base)
        self._register_settings(adapter_name, r, lora_alpha, config)
        if self.lora_init[adapter_name] == "default":
            lora_a, lora_b = lora_init.default_lora_factors(self.in_features, r, self.out_features, config.lora_bias)
        else:
            lora_a = lora_init.new_linear(self.in_features, r, bias=False)
            lora_b = lora_init.new_linear(r, self.out_features, bias=config.lora_bias)
        register_module(self.lora_A, adapter_name, lora_a)
        register_module(self.lora_B, adapter_name, lora_b)
        self._init_lora_factors(adapter_name, config)
        variant = self.lora_variant.get(adapter_name)
        if variant is not None:
            variant.init(self, adapter_name, config)
        self._finish_update(adapter_name)

    def _init_lora_factors(self, name: str, config: Any) -> None:
        family = self.lora_init[name]
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        if family in ("random", "default"):  # default: drawn by default_lora_factors
            return
        if family == "gaussian":
            lora_init.gaussian_(lora_a.weight, self.r[name])
            if not lora_b.weight.is_meta:
                with torch.no_grad():
                    lora_b.weight.zero_()
                    if lora_b.bias is not None:
                        lora_b.bias.zero_()
            return
        base = self.get_base_layer()
        r, scaling = self.r[name], self.scaling[name]
        if family in ("pissa", "olora"):
            if base.weight.is_meta:
                return
            weight = _t(base.weight, self.fan_in_fan_out)
            if family == "pissa":
                a, b, residual = lora_init.pissa(weight, r, scaling, str(config.init_lora_weights))
            else:
                a, b, residual = lora_init.olora(weight, r, scaling)
            lora_a.weight = nn.Parameter(a)
            lora_b.weight = nn.Parameter(b)
            base.weight.data = _t(residual, self.fan_in_fan_out)
        elif family == "orthogonal":
            if lora_a.weight.is_meta:
                return
            a, b = lora_init.orthogonal(r, self.in_features, self.out_features, base.weight.dtype)
            lora_a.weight = nn.Parameter(a)
            lora_b.weight = nn.Parameter(b)
        elif family == "mica":
            if lora_b.weight.is_meta or base.weight.is_meta:
                return
            a, b = lora_init.mica(_t(base.weight, self.fan_in_fan_out), r)
            lora_a.weight.data = a
            lora_b.weight.data = b
        elif family in DATA_DRIVEN:
            init_from_data(self, name, config)

    def _base_weight(self) -> torch.Tensor:
        """The base weight as a float tensor (quantized layers dequantize it); read by DoRA."""
        return self.get_base_layer().weight

    def _initial_magnitude(self, name: str) -> torch.Tensor:
        return magnitude_for_linear(
            self._base_weight(),
            self.lora_A[name].weight,
            self.lora_B[name].weight,
            self.scaling[name],
            self.fan_in_fan_out,
        )

    # -- math -------------------------------------------------------------------------------
    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        variant = self.lora_variant.get(adapter_name) if self.lora_variant else None
        delta = variant.delta_weight(self, adapter_name) if variant is not None else None
        if delta is not None:
            return delta
        factors = self.lora_B[adapter_name].weight, self.lora_A[adapter_name].weight
        (weight_b, weight_a), half = upcast_half_on_cpu(*factors)
        delta = _t(scaled_product(weight_b, weight_a, self.scaling[adapter_name]), self.fan_in_fan_out)
        return round_back(delta, half)

    def _lora_term(self, name: str, x: torch.Tensor) -> torch.Tensor:
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        scaling = self.scaling[name]
        if exact_scale(scaling) and is_plain_linear(lora_b):
            # the same bits as lora_b(...) * scaling, without a pass over the (tokens, out) activation
            # forward and backward: the scale goes onto the (out, r) weight (see exact_scale)
            bias = None if lora_b.bias is None else lora_b.bias * scaling
            return F.linear(lora_a(x), lora_b.weight * scaling, bias)
        return _scaled(lora_b(lora_a(x)), scaling)

    def _fusable_b(self, name: str) -> torch.Tensor | None:
        """`s·B` (lora_B's weight with the scaling folded in) when the scaled product can go straight
        into an accumulating GEMM with Hugging Face PEFT's bits: a plain bias-free `lora_B`, a scaling
        of 1 or a power of two (see exact_scale), A and B of one dtype, fp32 or fp64 (a half-precision
        GEMM accumulates in fp32 and rounds once, where HF rounds the product and then the sum).
        None otherwise."""
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        weight_b, scaling = lora_b.weight, self.scaling[name]
        if (
            weight_b.dtype not in _FUSED_DTYPES
            or weight_b.dtype != lora_a.weight.dtype
            or lora_b.bias is not None
            or not is_plain_linear(lora_b)
        ):
            return None
        if isinstance(scaling, torch.Tensor):  # compiled hotswap: the plain path, no branching on the value
            return None
        if scaling == 1:
            return weight_b
        return weight_b * scaling if exact_scale(scaling) else None

    def _accumulate_delta(self, name: str, x: torch.Tensor, out: torch.Tensor) -> bool:
        """Inference: `out += s·B(A(dropout(x)))` as `addmm_(out, A(x), (s·B)ᵀ)`, no delta tensor."""
        lora_a = self.lora_A[name]
        weight_a = lora_a.weight
        if (
            out.dtype != weight_a.dtype
            or out.shape[-1] != self.out_features
            or not (out.dim() == 2 or out.is_contiguous())  # add_product_'s layouts, checked before any work
            or not is_plain_linear(lora_a)
        ):
            return False
        if needs_autograd(out, x, weight_a, self.lora_B[name].weight):
            return False
        weight_b = self._fusable_b(name)
        if weight_b is None:
            return False
        x = self._cast_input(x, weight_a)
        dropout = self.lora_dropout[name]
        if not isinstance(dropout, nn.Identity):
            x = dropout(x)
        return add_product_(out, F.linear(x, weight_a), weight_b.t())

    def _train_update(self, name: str, x: torch.Tensor, result: torch.Tensor) -> torch.Tensor | None:
        """Training (module in train mode, autograd recording): the fused update of layers/fused.py.
        Evaluation keeps the composed modules and their Hugging Face PEFT bits."""
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        if not (self.training and needs_autograd(result, x, lora_a.weight, lora_b.weight)):
            return None
        if not (is_plain_linear(lora_a) and is_plain_linear(lora_b)):
            return None
        return fused_update(result, x, lora_a, lora_b, self.scaling[name], self.lora_dropout[name])

    def _grouped_delta_(self, plan: Any, x: torch.Tensor, result: torch.Tensor) -> set[str]:
        if x.shape[0] != result.shape[0] or result.shape[-1] != self.out_features:
            return set()

        def eligible(name: str) -> tuple[torch.Tensor, torch.Tensor, float] | None:
            if name not in self.lora_A or (self.lora_variant and name in self.lora_variant):
                return None
            return plain_factors(
                self.lora_A[name], self.lora_B[name], self.lora_dropout[name], self.scaling[name], self.use_dora[name]
            )

        cache = self.__dict__.setdefault("_grouped_cache", {})  # not state: never saved or moved
        return grouped_delta_(plan, x, result, eligible, cache)

    def _merge_delta_(self, name: str, weight: torch.Tensor) -> bool:
        """`weight += s·B@A` (Conv1D storage: `+= (s·B@A)ᵀ`) as one `addmm_` into the weight."""
        if self.lora_variant and name in self.lora_variant:
            return False
        weight_a = self.lora_A[name].weight
        if weight.dtype != weight_a.dtype or weight.device != weight_a.device:
            return False
        weight_b = self._fusable_b(name)
        if weight_b is None:
            return False
        if self.fan_in_fan_out:
            weight.addmm_(weight_a.t(), weight_b.t())
        else:
            weight.addmm_(weight_b, weight_a)
        return True

    def _dora_delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None) -> torch.Tensor:
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        scaling = self.scaling[name]
        base = self.get_base_layer()
        x, base_result = self._dora_input(name, x, result)
        # B@A as HF computes it (lora_B(lora_A(I))ᵀ, which equals lora_B(Aᵀ)ᵀ exactly), in x's dtype
        lora_weight = lora_b(lora_a.weight.T.contiguous()).T.to(x.dtype)
        weight = self._base_weight().to(x.dtype)
        weight_norm = linear_weight_norm(weight, lora_weight.detach(), scaling, self.fan_in_fan_out).detach()
        mag_norm_scale = (self.lora_magnitude_vector[name].weight / weight_norm).view(1, -1)
        lora_result = lora_b(lora_a(x))
        if base_result is not None:
            if base.bias is not None:
                base_result = base_result - base.bias
        else:
            base_result = F.linear(x, _t(weight, self.fan_in_fan_out))
        return (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling

    def _dora_merge_norm(self, name: str, base_weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return linear_weight_norm(base_weight, _t(delta, self.fan_in_fan_out), 1, self.fan_in_fan_out)

    def _dora_factor(self, name: str, norm: torch.Tensor) -> torch.Tensor:
        factor = self.lora_magnitude_vector[name].weight / norm
        return _t(factor.view(-1, 1), self.fan_in_fan_out)

    def __repr__(self) -> str:
        return "lora." + super().__repr__()
