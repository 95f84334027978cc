"""`PolyLinear`: `y = base(x) + x A_t B_t / r`, where the task's router mixes the layer's skills.

`poly_lora_A [n_splits, n_skills, in / n_splits, r]` and `poly_lora_B [n_splits, n_skills, r,
out / n_splits]` hold the skills; for a row of task `t` the router's weights `w [n_splits, n_skills]`
give `A_t = Σ_s w[q, s] A[q, s]` per split `q` (stacked along the input dimension) and likewise `B_t`
(along the output dimension).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from peft_core import BaseTunerLayer, current_batch_plan
from peft_core.tuners.layer_containers import require_sizes_divisible

from .routing import PolyRouter, task_ids_for_rows


def mixed_factors(weights: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: `A [in, r]` and `B [r, out]` from the router's `weights [batch, n_splits, n_skills]`."""
    batch = weights.shape[0]
    n_splits, _, d_in, rank = lora_a.shape
    a = torch.einsum("bqs,qsdr->bqdr", (weights, lora_a)).reshape(batch, n_splits * d_in, rank)
    b = torch.einsum("bqs,qsrd->bqrd", (weights, lora_b)).transpose(1, 2).reshape(batch, rank, -1)
    return a, b


class PolyLinear(BaseTunerLayer):
    """Poly / MHR on `nn.Linear`."""

    adapter_layer_names = ("poly_lora_A", "poly_lora_B", "poly_router")
    other_param_names = ("poly_r",)
    container_types = {"poly_router": nn.ModuleDict}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, r: int, n_tasks: int, n_skills: int, n_splits: int, init_weights: bool) -> None:
        require_sizes_divisible(self, n_splits, "n_splits", f"Poly splits every targeted layer into {n_splits} heads")
        self.poly_r[adapter_name] = r
        lora_a = torch.empty(n_splits, n_skills, self.in_features // n_splits, r)
        lora_b = torch.empty(n_splits, n_skills, r, self.out_features // n_splits)
        router = PolyRouter(n_tasks, n_skills, n_splits)
        if not lora_a.is_meta:
            with torch.no_grad():
                _init_like_linear(lora_a)
                if init_weights:
                    lora_b.zero_()
                else:
                    _init_like_linear(lora_b)
        router.reset()
        self.poly_lora_A[adapter_name] = nn.Parameter(lora_a)
        self.poly_lora_B[adapter_name] = nn.Parameter(lora_b)
        self.poly_router[adapter_name] = router
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _delta(self, x: torch.Tensor, adapter_name: str, task_ids: torch.Tensor) -> torch.Tensor:
        lora_a, lora_b = self.poly_lora_A[adapter_name], self.poly_lora_B[adapter_name]
        weights = self.poly_router[adapter_name](task_ids)
        a, b = mixed_factors(weights, lora_a, lora_b)
        rows = x.reshape(x.shape[0], -1, self.in_features).to(a.dtype)  # any rank: [batch, tokens, in]
        out = rows.bmm(a).bmm(b) / self.poly_r[adapter_name]
        return out.reshape(*x.shape[:-1], self.out_features)

    def _most_tasks(self, names: list[str]) -> int:
        return max(self.poly_router[name].n_tasks for name in names)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.disable_adapters:
            return self.base_layer(x, *args, **kwargs)
        out_dtype = x.dtype
        result = self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is not None:
            groups = [name for name in plan.adapter_groups() if name in self.poly_lora_A]
            if groups:
                task_ids = task_ids_for_rows(x.shape[0], self._most_tasks(groups)).to(x.device)
                result = result.clone()
                for name in groups:
                    rows = plan.rows(name, x.device)
                    result[rows] = (result[rows] + self._delta(x[rows], name, task_ids[rows])).to(result.dtype)
            return result.to(out_dtype)
        active = [name for name in self.active_adapters if name in self.poly_lora_A]
        if active:
            task_ids = task_ids_for_rows(x.shape[0], self._most_tasks(active))
            for name in active:
                result = result + self._delta(x, name, task_ids)
        return result.to(out_dtype)


def _init_like_linear(skills: torch.Tensor) -> None:
    """Each `[d, r]` skill slice drawn as an nn.Linear weight `[r, d]` would be, then transposed (HF's
    draws, skill by skill, split by split)."""
    n_splits, n_skills, d, r = skills.shape
    for skill in range(n_skills):
        for split in range(n_splits):
            weight = torch.empty((r, d))
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            skills[split, skill] = weight.T
