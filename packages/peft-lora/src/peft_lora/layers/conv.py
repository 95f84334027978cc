"""LoRA for `nn.Conv1d`, `nn.Conv2d` and `nn.Conv3d`.

A is a conv with the base layer's kernel size, stride and padding (r output channels), B is a 1x1
conv (r → out, with the base layer's groups):

    y = base(x) + B(A(dropout(x))) · s        merged:  W += s·(B ∘ A)  (a conv of the two kernels)

As in Hugging Face PEFT, A does not copy the base layer's dilation, and layers with groups > 1
need r divisible by groups and can't be merged (the update mixes channels across groups, so it is
not a grouped kernel). DoRA works on them with Hugging Face PEFT's weight norm: `B@A` (B grouped) is
reshaped to the base kernel's shape, as `dora.conv_lora_weight` does for every conv.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core.tuners.precision import round_back, upcast_half_on_cpu

from .. import init as lora_init
from ..config import init_family
from .base import LoraLayer, _scaled, warn_no_bias_for_lora_bias
from .dora import conv_lora_weight, conv_weight_norm

_CONV_FNS = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}


class _ConvNd(LoraLayer):
    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        self._kernel_dim = base.weight.dim()
        self.conv_fn = _CONV_FNS[self._kernel_dim]
        if base.groups > 1:
            warnings.warn("LoRA adapter added to ConvNd layer with groups > 1. Merging is not supported.")

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        return base.in_channels, base.out_channels

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        base = self.get_base_layer()
        if isinstance(r, int) and r > 0 and r % base.groups != 0:
            raise ValueError(
                f"Targeting a {type(base).__name__} with groups={base.groups} and rank {r}. Currently, support is "
                f"limited to conv layers where the rank is divisible by groups. Either choose a different rank or "
                f"do not target this specific layer."
            )
        family = init_family(config.init_lora_weights) or "default"
        if family not in ("default", "gaussian", "random"):
            raise ValueError(
                f"init_lora_weights={config.init_lora_weights!r} is not supported for {type(base).__name__} layers "
                f"(only True, False and 'gaussian' are); exclude the conv layers or choose another initialisation."
            )
        if config.lora_bias:
            warn_no_bias_for_lora_bias(base)
        self._register_settings(adapter_name, r, lora_alpha, config)
        conv = type(base)
        ones = (1,) * (self._kernel_dim - 2)
        self.lora_A[adapter_name] = conv(self.in_features, r, base.kernel_size, base.stride, base.padding, bias=False)
        self.lora_B[adapter_name] = conv(r, self.out_features, ones, ones, groups=base.groups, bias=config.lora_bias)
        if family != "random":
            if family == "default":
                lora_init.kaiming_uniform_(self.lora_A[adapter_name].weight)
            else:
                lora_init.gaussian_(self.lora_A[adapter_name].weight, r)
            nn.init.zeros_(self.lora_B[adapter_name].weight)
            if config.lora_bias:
                nn.init.zeros_(self.lora_B[adapter_name].bias)
        self._finish_update(adapter_name)

    def _initial_magnitude(self, name: str) -> torch.Tensor:
        weight = self.get_base_layer().weight
        lora_a, lora_b = self.lora_A[name].weight, self.lora_B[name].weight
        half = lora_a.dtype == torch.float16
        if half:
            lora_a, lora_b = lora_a.float(), lora_b.float()
        lora_weight = conv_lora_weight(lora_a, lora_b, weight.shape)
        if half:
            lora_weight = lora_weight.half()
        return conv_weight_norm(weight.to(lora_a.device), lora_weight, self.scaling[name])

    # -- math -------------------------------------------------------------------------------
    def _check_mergeable(self, name: str) -> None:
        if self.get_base_layer().groups > 1:
            raise NotImplementedError("Merging is not supported for _ConvNd layers with groups > 1!")
        super()._check_mergeable(name)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        factors = self.lora_A[adapter_name].weight, self.lora_B[adapter_name].weight
        (weight_a, weight_b), half = upcast_half_on_cpu(*factors)
        base_weight = self.get_base_layer().weight
        scaling = self.scaling[adapter_name]
        if self._kernel_dim == 4 and base_weight.size()[2:4] == (1, 1):  # 1x1 conv2d: a plain matmul
            delta = (weight_b.squeeze(3).squeeze(2) @ weight_a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(
                3
            ) * scaling
        else:
            delta = self.conv_fn(weight_a.transpose(0, 1), weight_b)
            delta = delta * scaling if self.get_base_layer().groups > 1 else delta.transpose(0, 1) * scaling
        return round_back(delta, half)

    def _lora_term(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return _scaled(self.lora_B[name](self.lora_A[name](x)), self.scaling[name])

    def _dora_delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None) -> torch.Tensor:
        lora_a, lora_b = self.lora_A[name], self.lora_B[name]
        scaling = self.scaling[name]
        base = self.get_base_layer()
        x, base_result = self._dora_input(name, x, result)
        weight = base.weight
        lora_weight = conv_lora_weight(lora_a.weight, lora_b.weight, weight.shape)
        weight_norm = conv_weight_norm(weight, lora_weight.detach(), scaling).detach()
        mag_norm_scale = self.lora_magnitude_vector[name].weight / weight_norm
        if base_result is None:
            base_result = self.conv_fn(
                x,
                weight,
                bias=None,
                stride=base.stride,
                padding=base.padding,
                dilation=base.dilation,
                groups=base.groups,
            )
        elif base.bias is not None:
            base_result = base_result - base.bias.view((1, -1) + (1,) * (base_result.dim() - 2))
        return (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_b(lora_a(x)) * scaling

    def _dora_merge_norm(self, name: str, base_weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return conv_weight_norm(base_weight, delta, 1)

    def _dora_factor(self, name: str, norm: torch.Tensor) -> torch.Tensor:
        factor = self.lora_magnitude_vector[name].weight / norm
        return factor.view((-1,) + (1,) * (self._kernel_dim - 1))

    def __repr__(self) -> str:
        return "lora." + super().__repr__()


class Conv1d(_ConvNd):
    pass


class Conv2d(_ConvNd):
    pass


class Conv3d(_ConvNd):
    pass
