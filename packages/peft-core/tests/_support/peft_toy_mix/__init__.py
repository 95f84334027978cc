"""Two tiny mixed-compatible methods for peft-core's mixed-model tests (not shipped).

- "toyadd": `y = base(x) + B(A(x))`, an additive low-rank delta (`supports_delta_weight`);
- "toyscale": `y = (base(x) - b) * (1 + s) + b`, a per-output scale of the weight (not a delta).

Both wrap another method's layer when asked (`wrapped_base`), so they nest in a `PeftMixedModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from peft_core import BaseTuner, BaseTunerLayer, PeftConfig, current_batch_plan, register_peft_method


@dataclass
class ToyAddConfig(PeftConfig):
    peft_type: str = "TOYADD"
    r: int = 2
    target_modules: Optional[Union[list[str], str]] = None
    init_weights: bool = True


@dataclass
class ToyScaleConfig(PeftConfig):
    peft_type: str = "TOYSCALE"
    target_modules: Optional[Union[list[str], str]] = None
    init_weights: bool = True


class ToyAddLinear(BaseTunerLayer):
    adapter_layer_names = ("toyadd_A", "toyadd_B")
    container_types: dict = {}  # core makes both ParameterDicts
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, r: int, init_weights: bool) -> None:
        base = self.get_base_layer()
        self.toyadd_A[adapter_name] = nn.Parameter(torch.randn(r, base.in_features) * 0.3)
        self.toyadd_B[adapter_name] = nn.Parameter(
            torch.zeros(base.out_features, r) if init_weights else torch.randn(base.out_features, r) * 0.3
        )
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        return self.toyadd_B[adapter_name] @ self.toyadd_A[adapter_name]

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return self.has_adapter(adapter_name)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        names = list(plan.adapter_groups()) if plan is not None else self.active_adapters
        for name in names:
            if name not in self.toyadd_A:
                continue
            delta = x @ self.get_delta_weight(name).T
            if plan is None:
                result = result + delta
            else:
                rows = plan.rows(name, x.device)
                result = result.clone()
                result[rows] += delta[rows]
        return result


class ToyScaleLinear(BaseTunerLayer):
    adapter_layer_names = ("toyscale_s",)
    container_types: dict = {}  # core makes the ParameterDict
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, init_weights: bool) -> None:
        out = self.get_base_layer().out_features
        self.toyscale_s[adapter_name] = nn.Parameter(torch.zeros(out) if init_weights else torch.randn(out) * 0.3)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _factor(self, names: Sequence[str], like: torch.Tensor) -> torch.Tensor:
        factor = torch.ones(like.shape[-1], dtype=like.dtype, device=like.device)
        for name in names:
            factor = factor * (1 + self.toyscale_s[name])
        return factor

    # no forward: BaseTunerLayer's calls adapted_forward (disabling, merges and mixed batches included)
    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if not names:
            return result
        bias = self.get_base_layer().bias
        shifted = result - bias if bias is not None else result
        out = shifted * self._factor(names, result)
        return out + bias if bias is not None else out

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        base = self.get_base_layer()
        base.weight.data = base.weight.data * (1 + self.toyscale_s[adapter_name].data)[:, None]

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        base.weight.data = base.weight.data / (1 + self.toyscale_s[adapter_name].data)[:, None]


class ToyAddModel(BaseTuner):
    prefix = "toyadd_"

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, ToyAddLinear):
            target.update_layer(adapter_name, config.r, config.init_weights)
            return
        base = self.wrapped_base(target, current_key)
        if not isinstance(base, nn.Linear):
            raise ValueError(f"toyadd can't adapt {current_key!r}")
        layer = ToyAddLinear(target)
        layer.update_layer(adapter_name, config.r, config.init_weights)
        setattr(parent, target_name, layer)


class ToyScaleModel(BaseTuner):
    prefix = "toyscale_"

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, ToyScaleLinear):
            target.update_layer(adapter_name, config.init_weights)
            return
        base = self.wrapped_base(target, current_key)
        if not isinstance(base, nn.Linear):
            raise ValueError(f"toyscale can't adapt {current_key!r}")
        layer = ToyScaleLinear(target)
        layer.update_layer(adapter_name, config.init_weights)
        setattr(parent, target_name, layer)


register_peft_method(
    name="toyadd", config_cls=ToyAddConfig, model_cls=ToyAddModel, is_mixed_compatible=True, plugin_api=">=1,<2"
)
register_peft_method(
    name="toyscale", config_cls=ToyScaleConfig, model_cls=ToyScaleModel, is_mixed_compatible=True, plugin_api=">=1,<2"
)
