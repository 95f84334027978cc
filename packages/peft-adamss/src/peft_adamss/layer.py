"""`AdamssLinear`: AdaMSS on an `nn.Linear`.

Per adapter: `adamss_A` / `adamss_B` (`nn.ParameterList`s: `A_k [rank_k, r']`, `B_k [rows_k, rank_k]`),
the frozen projection `adamss_newB [r', in(+1)]` (a saved buffer) and, not saved, the subspaces'
output rows. Forward: `p = newB [x; 1]`, the update of subspace k is `B_k A_k p`, scattered to its
rows: `y = base(x) + scatter(...)`. The bias column makes the merged update touch the bias too.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.mixed_batch import add_adapter_deltas
from peft_core.tuners.layer_containers import saved_buffers

from .decompose import decompose


class AdamssLinear(BaseTunerLayer):
    adapter_layer_names = ("adamss_A", "adamss_B", "adamss_newB")
    other_param_names = ("adamss_rows", "adamss_scatter")
    container_types = {"adamss_A": nn.ModuleDict, "adamss_B": nn.ModuleDict, "adamss_newB": saved_buffers}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, config: Any) -> None:
        base = self.get_base_layer()
        with torch.device(base.weight.device):  # real tensors even while adapters are made on meta
            parts = decompose(base.weight, base.bias, config)
        dtype = base.weight.dtype
        self.adamss_newB[adapter_name] = parts.new_b.to(dtype)
        self.adamss_A[adapter_name] = nn.ParameterList(nn.Parameter(a.to(dtype)) for a in parts.a_init)
        self.adamss_B[adapter_name] = nn.ParameterList(nn.Parameter(b.to(dtype)) for b in parts.b_init)
        self.adamss_rows[adapter_name] = parts.rows
        self.adamss_scatter[adapter_name] = torch.cat(parts.rows).long()
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def num_subspaces(self, adapter_name: str) -> int:
        return len(self.adamss_rows[adapter_name])

    # -- update -------------------------------------------------------------------------------------------
    def _with_bias_column(self, x: torch.Tensor) -> torch.Tensor:
        if self.get_base_layer().bias is None:
            return x
        return torch.cat((x, torch.ones(*x.shape[:-1], 1, device=x.device, dtype=x.dtype)), dim=-1)

    def _update(self, x: torch.Tensor, adapter_name: str, width: int) -> torch.Tensor:
        dtype = x.dtype
        projected = F.linear(self._with_bias_column(x), self.adamss_newB[adapter_name].to(dtype))
        chunks = [
            F.linear(F.linear(projected, a.to(dtype)), b.to(dtype))
            for a, b in zip(self.adamss_A[adapter_name], self.adamss_B[adapter_name])
        ]
        delta = torch.cat(chunks, dim=-1)
        index = self.adamss_scatter[adapter_name].to(delta.device).expand(*delta.shape[:-1], -1)
        return torch.zeros(*delta.shape[:-1], width, device=delta.device, dtype=delta.dtype).scatter(-1, index, delta)

    def _full_delta(self, adapter_name: str) -> torch.Tensor:
        """The update of `[W | b]`, `[out, in(+1)]` (fp32 on the CPU for half precision, as HF)."""
        weight = self.get_base_layer().weight
        half_on_cpu = weight.device.type == "cpu" and weight.dtype in (torch.float16, torch.bfloat16)
        compute = torch.float32 if half_on_cpu else weight.dtype
        new_b = self.adamss_newB[adapter_name].to(device=weight.device, dtype=compute)
        chunks = [
            b.to(device=weight.device, dtype=compute) @ a.to(device=weight.device, dtype=compute) @ new_b
            for a, b in zip(self.adamss_A[adapter_name], self.adamss_B[adapter_name])
        ]
        full = torch.zeros(weight.shape[0], new_b.shape[1], device=weight.device, dtype=compute)
        full[self.adamss_scatter[adapter_name].to(weight.device)] = torch.cat(chunks, dim=0)
        return full

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        weight = self.get_base_layer().weight
        full = self._full_delta(adapter_name)
        return (full[:, :-1] if self.get_base_layer().bias is not None else full).to(weight.dtype)

    def get_delta_bias(self, adapter_name: str) -> torch.Tensor | None:
        bias = self.get_base_layer().bias
        return None if bias is None else self._full_delta(adapter_name)[:, -1].to(bias.dtype)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.adamss_A and self.get_base_layer().bias is None

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        base = self.get_base_layer()
        weight = base.weight.data + self.get_delta_weight(adapter_name)
        bias = None if base.bias is None else base.bias.data + self.get_delta_bias(adapter_name)
        self.write_merged(adapter_name, safe_merge, weight, bias)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        base.weight.data -= self.get_delta_weight(adapter_name)
        if base.bias is not None:
            base.bias.data -= self.get_delta_bias(adapter_name)

    # -- forward ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        previous = x.dtype
        x = x.to(self.get_base_layer().weight.dtype)
        result = self.base_layer(x, *args, **kwargs)
        width = result.shape[-1]
        delta = lambda rows, name: self._update(rows, name, width)  # noqa: E731
        return add_adapter_deltas(x, result, self.active_adapters, self.adamss_A, delta, "an AdaMSS layer").to(previous)
