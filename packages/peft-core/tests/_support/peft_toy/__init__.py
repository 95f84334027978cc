"""A tiny low-rank method used only by peft-core's tests (not shipped).

Its conformance cases are in `peft_toy.conformance`; `peft_toy.mutants` breaks it on purpose to
show the conformance kit catches each kind of broken method (`peft_toy.installed`, what its test
entry point imports, applies the mutant named by PEFT_TOY_MUTANT in a fresh interpreter).

It exercises both container kinds (module-backed `toy_A`/`toy_B`, parameter-backed `toy_scale`),
merging, mixed batches, default targets and a refused not-implemented field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import torch
from torch import nn

from peft_core import (
    BaseTuner,
    BaseTunerLayer,
    ConfigError,
    PeftConfig,
    current_batch_plan,
    pattern_value,
    register_peft_method,
)


@dataclass
class ToyConfig(PeftConfig):
    peft_type: str = "TOY"
    r: int = 2
    target_modules: Optional[Union[list[str], str]] = None
    exclude_modules: Optional[Union[list[str], str]] = None
    layers_to_transform: Optional[Union[list[int], int]] = None
    layers_pattern: Optional[Union[list[str], str]] = None
    modules_to_save: Optional[list[str]] = None
    rank_pattern: dict = field(default_factory=dict)
    init_weights: bool = True
    scaling: float = 1.0  # multiplies the delta: a field that changes outputs but no tensor shape
    use_magic: bool = False

    set_fields = ("target_modules", "exclude_modules")
    not_implemented = {"use_magic": False}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r > 64:  # a method's own semantic check (core already refuses r <= 0)
            raise ConfigError(f"ToyConfig.r must be at most 64, got {self.r}")


class ToyLinear(BaseTunerLayer):
    adapter_layer_names = ("toy_A", "toy_B", "toy_scale")
    other_param_names = ("toy_r", "toy_scaling")
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        self.toy_A = nn.ModuleDict()
        self.toy_B = nn.ModuleDict()
        self.toy_scale = nn.ParameterDict()
        self.toy_r: dict[str, int] = {}
        self.toy_scaling: dict[str, float] = {}

    def update_layer(self, adapter_name: str, r: int, init_weights: bool, scaling: float = 1.0) -> None:
        self.make_adapter(adapter_name, r, init_weights, scaling)

    def make_adapter(self, adapter_name: str, r: int, init_weights: bool, scaling: float = 1.0) -> None:
        base = self.get_base_layer()
        self.toy_r[adapter_name] = r
        self.toy_scaling[adapter_name] = scaling
        self.toy_A[adapter_name] = nn.Linear(base.in_features, r, bias=False)
        self.toy_B[adapter_name] = nn.Linear(r, base.out_features, bias=False)
        self.toy_scale[adapter_name] = nn.Parameter(torch.ones(base.out_features))
        if init_weights:
            nn.init.zeros_(self.toy_B[adapter_name].weight)
        else:
            nn.init.normal_(self.toy_B[adapter_name].weight, std=0.5)
            nn.init.normal_(self.toy_scale[adapter_name], mean=1.0, std=0.2)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _delta(self, x: torch.Tensor, name: str) -> torch.Tensor:
        x = x.to(self.toy_A[name].weight.dtype)  # fp32 adapters on a half-precision base
        delta = self.toy_B[name](self.toy_A[name](x)) * self.toy_scale[name]
        scaling = self.toy_scaling.get(name, 1.0)
        return delta if scaling == 1.0 else delta * scaling

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        a, b = self.toy_A[adapter_name].weight, self.toy_B[adapter_name].weight
        delta = (b @ a) * self.toy_scale[adapter_name][:, None]
        scaling = self.toy_scaling.get(adapter_name, 1.0)
        return delta if scaling == 1.0 else delta * scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compute(x)

    def compute(self, x: torch.Tensor, *, adapter: bool = True, disable: bool = True, plan: bool = True) -> torch.Tensor:
        """The forward pass; the mutants (peft_toy.mutants) switch one of its parts off."""
        if (disable and self._unmerge_if_disabled()) or self.merged or not adapter:
            return self.base_layer(x)
        result = self.base_layer(x)
        batch = current_batch_plan() if plan else None
        if batch is not None:
            result = result.clone()
            for name in batch.adapter_groups():
                if name in self.toy_A:
                    rows = batch.rows(name, x.device)
                    result[rows] += self._delta(x[rows], name).to(result.dtype)
            return result
        for name in self.active_adapters:
            if name in self.toy_A:
                result = result + self._delta(x, name).to(result.dtype)
        return result


class ToyModel(BaseTuner):
    prefix = "toy_"

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        r = pattern_value(config.rank_pattern, current_key, config.r)
        if isinstance(target, ToyLinear):
            target.update_layer(adapter_name, r, config.init_weights, config.scaling)
            return
        if not isinstance(target, nn.Linear):
            raise ValueError(f"Target module {current_key!r} ({type(target).__name__}) is not supported by toy.")
        layer = ToyLinear(target)
        layer.update_layer(adapter_name, r, config.init_weights, config.scaling)
        setattr(parent, target_name, layer)


register_peft_method(
    name="toy",
    config_cls=ToyConfig,
    model_cls=ToyModel,
    default_target_modules={"llama": ["q_proj", "v_proj"]},
    plugin_api=">=1,<2",
)
