"""`BeftLinear`: an `nn.Linear` whose output gets one trained bias vector per adapter.

Per adapter: `beft_bias [1, out]` (HF's shape). Forward: `base(x) + Σ active beft_bias`. Merging
adds the vector to the base layer's own bias, so a layer without a bias can't be merged (refused).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core import BaseTunerLayer, UnsupportedOperationError, current_batch_plan
from peft_core.tuners.mixed_batch import add_per_group


class BeftLinear(BaseTunerLayer):
    adapter_layer_names = ("beft_bias",)
    container_types = {}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, init_weights: bool) -> None:
        # Same draw as HF (randn, then zeroed for the default init), so seeded random inits agree.
        values = torch.randn((1, self.out_features))
        if init_weights:
            values.zero_()
        self.beft_bias[adapter_name] = nn.Parameter(values)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def can_merge(self) -> bool:
        return self.get_base_layer().bias is not None

    def _base_bias(self, adapter_name: str) -> torch.Tensor:
        bias = self.get_base_layer().bias
        if bias is None:
            raise UnsupportedOperationError(
                f"BEFT adapter {adapter_name!r} can't be merged into a layer without a bias "
                f"({type(self.get_base_layer()).__name__}(bias=False)); its vector is added to the output at "
                f"run time instead. Keep the adapter unmerged."
            )
        return bias

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        bias = self._base_bias(adapter_name)
        vector = self.beft_bias[adapter_name].data.squeeze()
        if safe_merge:
            merged = (bias.data + vector).to(bias.dtype)
            self._check_finite(merged, adapter_name)
            bias.data = merged
        else:
            bias.data.add_(vector)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        bias = self._base_bias(adapter_name)
        bias.data = (bias.data - self.beft_bias[adapter_name].data.squeeze()).to(bias.dtype)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        dtype = result.dtype
        plan = current_batch_plan()
        if plan is not None:
            return add_per_group(plan, x, result, self.beft_bias, lambda _, name: self.beft_bias[name].flatten(), "a BEFT layer")
        total = None
        for name in self.active_adapters:
            if name in self.beft_bias:
                vector = self.beft_bias[name].flatten()
                total = vector if total is None else total + vector
        return result if total is None else (result + total).to(dtype)
