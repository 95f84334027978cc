"""LN tuning layer: each adapter is a full trainable copy of the wrapped module (normally a norm).

The original stays at `<norm>.base_layer` and is never changed; the copies live in
`ln_tuning_layers[<adapter>]` and are saved as `<norm>.ln_tuning_layers.<param>` (HF's keys).
Merging swaps the active copy into `base_layer` (and the original into the copy's slot), so only one
adapter can be merged at a time; unmerging swaps them back.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Sequence

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTunerLayer


class LNTuningLayer(BaseTunerLayer):
    adapter_layer_names = ("ln_tuning_layers",)
    container_types = {"ln_tuning_layers": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        # Every adapter layer exposes these (code walking a PEFT model reads them); a norm has no in/out
        # projection, so None, as in Hugging Face PEFT.
        self.in_features: int | None = None
        self.out_features: int | None = None

    def _original(self) -> nn.Module:
        """The untouched module, wherever merging has put it."""
        if self.merged_adapters:
            return self.ln_tuning_layers[self.merged_adapters[-1]]
        return self.base_layer

    def update_layer(self, adapter_name: str) -> None:
        self.ln_tuning_layers[adapter_name] = copy.deepcopy(self._original())

    def cast_adapter_dtype(self, adapter_name: str, autocast: bool = True) -> None:
        return None  # copies keep the original's dtype (as in HF): upcasting them would break the forward

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """HF's keys; while merged, the trained copy sits in `base_layer`, so report it from there."""
        if adapter_name not in self.merged_adapters:
            return super().adapter_tensors(adapter_name)
        return [
            AdapterTensor(f"ln_tuning_layers.{key}", f"base_layer.{key}", tensor)
            for key, tensor in self.base_layer.state_dict(keep_vars=True).items()
        ]

    # -- merging ----------------------------------------------------------------------------------
    def merge(self, safe_merge: bool = False, adapter_names: Sequence[str] | None = None) -> None:
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        names = [n for n in names if self.has_adapter(n)]
        if not names:
            return
        if len(names) > 1:
            raise ValueError(
                f"LN tuning can merge only one adapter at a time (it replaces the module), got {names}; "
                f"pass adapter_names=[one name]."
            )
        name = names[0]
        if name in self.merged_adapters:
            warnings.warn("All adapters are already merged, nothing to do.", stacklevel=2)  # HF PEFT's wording
            return
        if self.merged_adapters:
            warnings.warn(f"Already merged with {self.merged_adapters}. Unmerging first.", stacklevel=2)
            self.unmerge()
        if safe_merge:
            for tensor in self.ln_tuning_layers[name].state_dict().values():
                if tensor.is_floating_point():
                    self._check_finite(tensor, name)
        self._swap(name)
        self.merged_adapters.append(name)

    def unmerge(self) -> None:
        while self.merged_adapters:
            self._swap(self.merged_adapters.pop())

    def _swap(self, name: str) -> None:
        tuned = self.ln_tuning_layers[name]
        self.ln_tuning_layers[name] = self.base_layer
        self.base_layer = tuned

    # -- forward ----------------------------------------------------------------------------------
    def adapted_forward(self, x: torch.Tensor, adapter_names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        active = list(adapter_names)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        if len(active) > 1:
            raise ValueError(
                f"LN tuning runs one adapter at a time (each replaces the module), but {active} are active; "
                f"call set_adapter with a single name."
            )
        return self.ln_tuning_layers[active[0]](x, *args, **kwargs)

    def batch_forward(self, plan: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not torch.is_tensor(x) or x.dim() == 0 or x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: an LN tuning layer got an input whose first dimension is not the batch "
                f"({plan.batch_size} rows); it can only split inputs along the batch dimension."
            )
        result: torch.Tensor | None = None
        for name in plan.groups:
            module = self.ln_tuning_layers[name] if name in self.ln_tuning_layers else self.base_layer
            rows = plan.rows(name, x.device)
            out = module(x[rows], *args, **kwargs)
            if result is None:
                result = out.new_empty((x.shape[0], *out.shape[1:]))
            result[rows] = out
        assert result is not None
        return result
