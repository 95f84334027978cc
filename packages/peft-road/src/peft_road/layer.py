"""`RoadLinear`: an `nn.Linear` whose output features are rotated (and scaled) in pairs.

The layer stores per adapter `road_theta` (angles) and `road_alpha` (scales), both of length
`parameter_count(variant, out)`. Several active adapters rotate one after another; a mixed-adapter
batch rotates each row with its own adapter.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core import BaseTunerLayer, ConfigError
from peft_core.tuners.mixed_batch import update_adapter_outputs

from .rotation import parameter_count, rotate, rotation_matrix


class RoadLinear(BaseTunerLayer):
    adapter_layer_names = ("road_theta", "road_alpha")
    other_param_names = ("variant", "group_size")
    container_types = {}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, variant: str, group_size: int, init_weights: bool) -> None:
        if self.out_features % group_size:
            raise ConfigError(
                f"RoAd group_size={group_size} does not divide this layer's {self.out_features} output features; "
                f"choose a group_size that divides every adapted layer's output size (e.g. 8 or 16 for small models)."
            )
        self.variant[adapter_name] = variant
        self.group_size[adapter_name] = group_size
        size = parameter_count(variant, self.out_features)
        theta, alpha = torch.empty(size), torch.empty(size)
        if init_weights:
            nn.init.zeros_(theta)
            nn.init.ones_(alpha)
        else:  # HF's order of draws: theta, then alpha
            nn.init.normal_(theta, mean=0.0, std=0.5)
            nn.init.normal_(alpha, mean=1.0, std=0.5)
        self.road_theta[adapter_name] = nn.Parameter(theta)
        self.road_alpha[adapter_name] = nn.Parameter(alpha)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _rotate(self, name: str, y: torch.Tensor) -> torch.Tensor:
        theta = self.road_theta[name]
        return rotate(self.variant[name], self.group_size[name], theta, self.road_alpha[name], y.to(theta.dtype))

    def _matrix(self, name: str) -> torch.Tensor:
        return rotation_matrix(
            self.variant[name], self.group_size[name], self.road_theta[name].data, self.road_alpha[name].data
        )

    # -- merging: W' = R W, b' = R b ----------------------------------------------------------------
    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        base = self.get_base_layer()
        dtype = base.weight.dtype
        matrix = self._matrix(adapter_name).to(dtype)
        weight = torch.matmul(matrix, base.weight.data)
        bias = torch.matmul(matrix, base.bias.data) if base.bias is not None else None
        if safe_merge:
            self._check_finite(weight, adapter_name)
            if bias is not None:
                self._check_finite(bias, adapter_name)
        base.weight.data = weight.contiguous().to(dtype)
        if bias is not None:
            base.bias.data = bias.contiguous().to(dtype)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        dtype = base.weight.dtype
        # R is a scaled rotation per pair, not orthogonal in general: undo it with its inverse.
        inverse = torch.linalg.inv(self._matrix(adapter_name).to(torch.float32)).to(dtype)
        base.weight.data = torch.matmul(inverse, base.weight.data).contiguous()
        if base.bias is not None:
            base.bias.data = torch.matmul(inverse, base.bias.data).contiguous()

    # -- forward ------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)

        def rotate(out: torch.Tensor, rows: torch.Tensor, name: str) -> torch.Tensor:
            return self._rotate(name, out)

        return update_adapter_outputs(x, result, self.active_adapters, self.road_theta, rotate, "a RoAd layer").to(
            result.dtype
        )
