"""`DeloraLinear`: an `nn.Linear` plus a normalised low-rank update per adapter.

Per adapter: `delora_A [r, in]`, `delora_B [out, r]`, `delora_lambda [1]` (trained) and
`delora_w_norm [in]`, the base weight's column norms captured when the adapter is created (a
saved buffer: the update keeps its scale after the base weight is merged into). The branch is

    h = ((dropout(x) ⊙ w_norm) Aᵀ) ⊙ (λ / r) / (‖A_i‖ ‖B^i‖),   y = base(x) + h Bᵀ

with row norms of `A` and column norms of `B` clamped at 1e-4, in Hugging Face PEFT's order of operations.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer, BatchPlan
from peft_core.tuners.mixed_batch import add_per_group
from peft_core.tuners.layer_containers import dropout_module, saved_buffers

NORM_FLOOR = 1e-4


class DeloraLinear(BaseTunerLayer):
    adapter_layer_names = ("delora_A", "delora_B", "delora_lambda", "delora_w_norm")
    other_param_names = ("r", "delora_dropout")
    container_types = {"delora_w_norm": saved_buffers, "delora_dropout": nn.ModuleDict}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, r: int, delora_lambda: float, dropout: float, init_weights: bool) -> None:
        self.r[adapter_name] = r
        a = nn.Parameter(torch.empty(r, self.in_features))
        b = nn.Parameter(torch.empty(self.out_features, r))
        nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        if init_weights:
            nn.init.zeros_(b)
        else:
            nn.init.kaiming_uniform_(b, a=math.sqrt(5))
        self.delora_A[adapter_name] = a
        self.delora_B[adapter_name] = b
        self.delora_lambda[adapter_name] = nn.Parameter(torch.full((1,), float(delora_lambda)))
        self.delora_dropout[adapter_name] = dropout_module(dropout)
        weight = self.get_base_layer().weight
        with torch.no_grad():
            if weight.is_meta:  # norms are unknown until real weights arrive; a loaded file brings them
                norm = torch.ones(weight.shape[1], device=weight.device)
            else:
                norm = torch.norm(weight.data, dim=0).detach()
        self.delora_w_norm[adapter_name] = norm
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _scale(self, name: str) -> torch.Tensor:
        """`(λ / r) / (‖A_i‖ ‖B^i‖)` for each rank component."""
        a_norm = torch.clamp(self.delora_A[name].norm(dim=1), min=NORM_FLOOR)
        b_norm = torch.clamp(self.delora_B[name].norm(dim=0), min=NORM_FLOOR)
        return (self.delora_lambda[name] / self.r[name]) / (a_norm * b_norm)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        a, b = self.delora_A[adapter_name], self.delora_B[adapter_name]
        a_norm = torch.clamp(a.norm(dim=1), min=NORM_FLOOR)
        b_norm = torch.clamp(b.norm(dim=0), min=NORM_FLOOR)
        diag = torch.diag_embed(self.delora_lambda[adapter_name] / self.r[adapter_name] / (a_norm * b_norm))
        delta = b @ diag @ a
        return delta * self.delora_w_norm[adapter_name].unsqueeze(0)

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        base = self.get_base_layer()
        delta = self.get_delta_weight(adapter_name).detach().to(dtype=base.weight.dtype, device=base.weight.device)
        with torch.no_grad():
            self.add_to_base_weight(delta, adapter_name, safe_merge)

    def _branch(self, x: torch.Tensor, name: str) -> torch.Tensor:
        h = F.linear(self.delora_dropout[name](x) * self.delora_w_norm[name], self.delora_A[name])
        return F.linear(h * self._scale(name), self.delora_B[name])

    def batch_forward(self, plan: BatchPlan, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        branch = lambda rows, name: self._branch(rows, name).to(result.dtype)  # noqa: E731
        return add_per_group(plan, x, result, self.delora_A, branch, "a DeLoRA layer")

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if not names:
            return result
        added = torch.zeros_like(result)  # HF accumulates in the output dtype, then adds once
        for name in names:
            added += self._branch(x, name)
        return result + added.to(result.dtype)
