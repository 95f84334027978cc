"""LoRA on an `nn.Parameter` (`LoraConfig.target_parameters`), above all the fused 3-D expert weights
that transformers 5 uses for mixture-of-experts models (`mlp.experts.gate_up_proj`, `down_proj`).

One `ParamWrapper` adapts one parameter of the module it wraps; several parameters of the same module
are adapted by wrappers nested through `base_layer` (the saved keys of the inner one carry a
`base_layer.` segment, as in Hugging Face PEFT). During the forward pass the wrapped module sees its
parameter replaced by `W + ΔW` (through `torch.func.functional_call`, so the sum is computed once per
call however often the module reads the parameter).

Shapes (Hugging Face PEFT 0.21.2's layout, so files move between the libraries):
- a 2-D parameter `(out, in)` is a plain linear weight: `A [r, in]`, `B [out, r]`, `ΔW = s·B@A`;
- a 3-D parameter holds `E` experts: `(E, out, in)` as used by `F.linear` (Qwen3-MoE, Mixtral), or
  `(E, in, out)` when the module says `is_transposed = True` (GPT-OSS, `x @ W[e]`). Every expert gets
  its own rank-`r` pair: `A [E·r, in]` (rows expert-major), `B [out, r·E]` (columns rank-major,
  expert-minor), so `ΔW[e] = s·B_e@A_e` with `A_e = A.view(E, r, in)[e]`, `B_e = B.view(out, r, E)[..., e]`.

Dropout, DoRA, `lora_bias`, `fan_in_fan_out` and mixed-adapter batches can't be expressed on a
parameter and are refused (as in Hugging Face PEFT).
"""

from __future__ import annotations

from typing import Any

import torch
from peft_core import current_batch_plan
from peft_core.errors import ConfigError
from peft_core.tuners.precision import round_back, upcast_half_on_cpu
from torch import nn

from .. import init as lora_init
from .base import LoraLayer, scaled_product

# Parameter dtypes a delta is cast to before the addition; others (fp8) add in the delta's dtype.
_COMPUTE_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_FP8_NAMES = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu")
_FP8_DTYPES = tuple(getattr(torch, n) for n in _FP8_NAMES if hasattr(torch, n))
_PARAM_INITS = ("default", "random", "gaussian", "eva")


def check_param_config(config: Any, key: str) -> None:
    """Refuse options a parameter target can't honour, before anything is created."""
    problems = []
    if config.lora_dropout:
        problems.append("lora_dropout != 0 (the input can't be factored out of W + ΔW)")
    if config.use_dora:
        problems.append("use_dora=True")
    if config.lora_bias:
        problems.append("lora_bias=True")
    if config.fan_in_fan_out:
        problems.append("fan_in_fan_out=True")
    for option in ("velora_config", "kasa_config", "monteclora_config"):
        if getattr(config, option, None) is not None:
            problems.append(f"{option} set")
    from ..config import init_family

    family = init_family(config.init_lora_weights)
    if family not in _PARAM_INITS:
        problems.append(f"init_lora_weights={config.init_lora_weights!r} (use True, False or 'gaussian')")
    if problems:
        raise ConfigError(
            f"LoRA on the parameter {key!r} (target_parameters) does not work with {', '.join(problems)}; change "
            f"these options or adapt the parameter's module through target_modules instead."
        )


class ParamWrapper(LoraLayer):
    """LoRA for one parameter (`parameter_name`) of the wrapped module; see the module docstring."""

    supports_mixed_batch = False
    saves_nested_path = True  # an inner wrapper's keys are `<module>.base_layer.lora_A.weight`, as in HF

    def __init__(self, base_layer: nn.Module, parameter_name: str) -> None:
        self.__dict__["parameter_name"] = parameter_name  # read by _in_out_features during __init__
        super().__init__(base_layer)

    # -- the parameter ----------------------------------------------------------------------
    def get_param(self) -> torch.Tensor:
        return getattr(self.get_base_layer(), self.parameter_name)

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        shape = tuple(getattr(base, self.parameter_name).shape)
        if len(shape) == 2:
            experts, (out_features, in_features) = 1, shape
            transposed = False
        elif len(shape) == 3:
            experts = shape[0]
            transposed = bool(getattr(base, "is_transposed", False))
            in_features, out_features = (shape[1], shape[2]) if transposed else (shape[2], shape[1])
        else:
            raise ConfigError(
                f"target_parameters: {self.parameter_name!r} of {type(base).__name__} has {len(shape)} dimensions; "
                f"LoRA adapts 2-D (a linear weight) and 3-D (stacked experts) parameters only."
            )
        self.__dict__.update(num_experts=experts, stored_in_out=transposed)
        return in_features, out_features

    def _param_path(self) -> str:
        """The parameter's path below `self.base_layer` (through any wrappers nested inside this one)."""
        parts = []
        module = self._modules["base_layer"]
        while isinstance(module, LoraLayer):
            parts.append("base_layer")
            module = module._modules["base_layer"]
        return ".".join([*parts, self.parameter_name])

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        check_param_config(config, self.parameter_name)
        self._register_settings(adapter_name, r, lora_alpha, config)
        rank = r * self.num_experts
        family = self.lora_init[adapter_name]
        if family == "default":
            lora_a, lora_b = lora_init.default_lora_factors(self.in_features, rank, self.out_features, False)
        else:
            lora_a = lora_init.new_linear(self.in_features, rank, bias=False)
            lora_b = lora_init.new_linear(rank, self.out_features, bias=False)
            if family in ("gaussian", "eva"):
                if family == "gaussian":
                    lora_init.gaussian_(lora_a.weight, r)
                if not lora_b.weight.is_meta:
                    with torch.no_grad():
                        lora_b.weight.zero_()
        self.lora_A[adapter_name] = lora_a
        self.lora_B[adapter_name] = lora_b
        self._finish_update(adapter_name)

    def _move_adapter_to_device_of_base_layer(self, adapter_name: str) -> None:
        param = self.get_param()
        if param.is_meta:
            return
        dtype = param.dtype if (param.dtype.is_floating_point or param.dtype.is_complex) else None
        for container in (self.lora_A, self.lora_B):
            module = container[adapter_name]
            if module.weight.is_meta:
                continue
            module.to(device=param.device, dtype=dtype)

    def move_adapter_to_base_device(self, adapter_name: str) -> None:
        param = self.get_param()
        for container in (self.lora_A, self.lora_B):
            if adapter_name in container:
                container[adapter_name].to(device=param.device)

    # -- math -------------------------------------------------------------------------------
    def _factors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-expert factors `(lhs, rhs)` with `ΔW = s·lhs@rhs` in the parameter's layout."""
        weight_a, weight_b = self.lora_A[name].weight, self.lora_B[name].weight
        weight_a = weight_a.reshape(self.num_experts, -1, weight_a.shape[-1])  # (E, r, in)
        weight_b = weight_b.reshape(weight_b.shape[0], -1, self.num_experts).permute(2, 0, 1)  # (E, out, r)
        if self.stored_in_out:
            return weight_a.transpose(-2, -1), weight_b.transpose(-2, -1)
        return weight_b, weight_a

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        param = self.get_param()
        scaling = self.scaling[adapter_name]
        if self.num_experts == 1:
            factors = self.lora_B[adapter_name].weight, self.lora_A[adapter_name].weight
            (weight_b, weight_a), half = upcast_half_on_cpu(*factors)
            delta = round_back(scaled_product(weight_b, weight_a, scaling), half)
        else:
            weight_a = self.lora_A[adapter_name].weight
            weight_b = self.lora_B[adapter_name].weight
            weight_a = weight_a.reshape(self.num_experts, -1, weight_a.shape[-1])
            weight_b = weight_b.reshape(weight_b.shape[0], -1, self.num_experts)
            pattern = "o r e, e r i -> e i o" if self.stored_in_out else "o r e, e r i -> e o i"
            delta = torch.einsum(pattern, weight_b, weight_a) * scaling
        if param.dtype in _COMPUTE_DTYPES:
            return delta.to(param.device, param.dtype)
        return delta.to(param.device)

    def adapted_param(self, active: list[str]) -> torch.Tensor:
        """`W + ΔW` of the active adapters, with Hugging Face PEFT's operations (one `baddbmm` for a
        single adapter on stacked experts; otherwise the summed deltas added to W)."""
        param = self.get_param()
        fp8 = param.dtype in _FP8_DTYPES
        if len(active) == 1 and self.num_experts > 1 and not fp8:
            lhs, rhs = self._factors(active[0])
            with torch.autocast(device_type=param.device.type, enabled=False):
                return torch.baddbmm(param, lhs.to(param.dtype), rhs.to(param.dtype), alpha=self.scaling[active[0]])
        delta = None
        for name in active:
            delta = self.get_delta_weight(name) if delta is None else delta + self.get_delta_weight(name)
        if fp8:  # no arithmetic in fp8: add in the delta's dtype, clamp to the fp8 range, cast back
            info = torch.finfo(param.dtype)
            return (param.to(delta.dtype) + delta).clamp(min=info.min, max=info.max).to(param.dtype)
        return param + delta

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        if current_batch_plan() is not None:
            raise ValueError(
                f"LoRA on the parameter {self.parameter_name!r} (target_parameters) can't run a mixed-adapter batch; "
                f"run one forward per adapter (set_adapter) instead."
            )
        active = [name for name in self._active_adapter if name in self.lora_A]
        if not active:
            return self.base_layer(x, *args, **kwargs)
        value = self.adapted_param(active)
        return torch.func.functional_call(
            self.base_layer, {self._param_path(): value}, (x, *args), kwargs, tie_weights=False, strict=False
        )

    # -- merging ----------------------------------------------------------------------------
    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        param = self.get_param()
        with torch.no_grad():
            delta = self.get_delta_weight(adapter_name)
            if safe_merge:
                merged = param.data.clone()
                merged += delta.to(merged.dtype)
                self._check_finite(merged, adapter_name)
                param.data = merged
            else:
                param.data += delta

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        param = self.get_param()
        with torch.no_grad():
            param.data -= self.get_delta_weight(adapter_name).to(param.dtype)

    def __repr__(self) -> str:
        rep = super().__repr__()
        start = rep.find("(") + 1
        return f"{rep[:start]}\n  parameter_name={self.parameter_name!r},{rep[start:]}"
