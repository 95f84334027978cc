"""`ShiraLinear`: an `nn.Linear` whose weight gets a trained sparse update per adapter.

Per adapter: `shira_weight [k]` (trained values) and `shira_indices [2, k]` (int32 row/column
positions, a buffer saved with the adapter) plus a runtime `scaling` (1.0; `set_scale` changes it).
The forward pass computes `x (W + Δ)ᵀ + b` with `Δ[rows, cols] = scaling · shira_weight`, exactly as
Hugging Face PEFT does, so the base layer's own forward (and any hook on it) is not called.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer, ConfigError, current_batch_plan
from peft_core.tuners.mixed_batch import run_per_group
from peft_core.tuners.layer_containers import saved_buffers

from .masks import shira_parameter_count


class ShiraLinear(BaseTunerLayer):
    adapter_layer_names = ("shira_weight", "shira_indices")
    other_param_names = ("r", "scaling")
    container_types = {"shira_indices": saved_buffers}
    features_from_base = True
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        # Indices created without a mask (custom mask_type, no mask_fn) until a file fills them.
        self._placeholders: dict[str, tuple[torch.Tensor, int]] = {}
        self._warned_hooks = False

    def update_layer(self, adapter_name: str, r: int, indices: torch.Tensor | None, init_weights: bool) -> None:
        count = shira_parameter_count(r, self.in_features, self.out_features)
        if count > self.in_features * self.out_features:
            raise ConfigError(
                f"SHiRA r={r} asks for r*(in+out) = {count} trained entries but the layer has only "
                f"{self.in_features * self.out_features} weights; lower r."
            )
        self.r[adapter_name] = r
        self.scaling[adapter_name] = 1.0
        values = torch.zeros(count) if init_weights else torch.randn(count)
        self.shira_weight[adapter_name] = nn.Parameter(values)
        if indices is None:
            indices = torch.zeros(2, count, dtype=torch.int32)
            self._placeholders[adapter_name] = (indices, indices._version)
        else:
            self._placeholders.pop(adapter_name, None)
        self.shira_indices[adapter_name] = indices
        self._move_adapter_to_device_of_base_layer(adapter_name)
        if adapter_name in self._placeholders:
            indices = self.shira_indices[adapter_name]
            self._placeholders[adapter_name] = (indices, indices._version)

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._placeholders.pop(adapter_name, None)

    def set_scale(self, adapter_name: str, scale: float) -> None:
        """Scale an adapter's update at inference (1.0 while training); unknown names are ignored, as in HF."""
        if adapter_name in self.scaling:
            self.scaling[adapter_name] = scale

    def _indices(self, adapter_name: str) -> torch.Tensor:
        indices = self.shira_indices[adapter_name]
        pending = self._placeholders.get(adapter_name)
        if pending is not None and pending[0] is indices and indices._version == pending[1]:
            raise ConfigError(
                f"SHiRA adapter {adapter_name!r} has no mask: its config has a custom mask_type and no mask_fn. Set "
                f"`config.mask_fn` before creating the adapter, or load a saved adapter (its indices are in the file)."
            )
        return indices.long()

    def _add_update(self, weight: torch.Tensor, adapter_name: str) -> torch.Tensor:
        """`weight + Δ` (out of place, differentiable in the adapter values)."""
        indices = self._indices(adapter_name).to(weight.device)
        values = self.shira_weight[adapter_name] * self.scaling[adapter_name]
        return weight.index_put((indices[0], indices[1]), values.to(weight.dtype), accumulate=True)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        weight = self.get_base_layer().weight
        return self._add_update(torch.zeros_like(weight), adapter_name)

    def _run(self, x: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        base = self.get_base_layer()
        weight = base.weight
        for name in names:
            if name in self.shira_weight:
                weight = self._add_update(weight, name)
        return F.linear(x, weight, base.bias)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        self._warn_about_base_hooks()
        plan = current_batch_plan()
        if plan is not None:
            if x.shape[0] != plan.batch_size:
                raise ValueError(
                    f"Mixed-adapter batch: a SHiRA layer got {x.shape[0]} rows but adapter_names has "
                    f"{plan.batch_size} entries; the adapted layer must see the batch dimension first."
                )
            return run_per_group(plan, x, self._run, self.shira_weight)
        return self._run(x, self.active_adapters)

    def _warn_about_base_hooks(self) -> None:
        base = self.get_base_layer()
        if self._warned_hooks or not (base._forward_hooks or base._forward_pre_hooks):
            return
        self._warned_hooks = True
        warnings.warn(
            "A layer adapted with SHiRA has forward hooks on its base layer; SHiRA computes the output from the "
            "base weight directly, so those hooks don't run. Register them on the adapted layer instead.",
            UserWarning,
            stacklevel=3,
        )
