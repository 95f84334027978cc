"""`SupertuningLinear`: an `nn.Linear` with trained values added at fixed weight positions (plus an
optional LoRA) per adapter.

Per adapter: `supertuning_indices` (int32 flat positions into `W`, chosen by magnitude at creation),
`supertuning_values` (float32, one per position) and, with `r`, `supertuning_lora_A [r, in]` /
`supertuning_lora_B [out, r]`. The forward composes `W + scatter(values)` (all active adapters) and
runs one `F.linear`, then adds each LoRA `(alpha / r) · B(A(x))`: Hugging Face PEFT's order of operations.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer, ConfigError, current_batch_plan
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.layer_containers import dropout_module


def support_size(numel: int, sparsity: float) -> int:
    """How many entries of a weight with `numel` entries are trained."""
    return int(numel * (1 - sparsity))


class SupertuningLinear(BaseTunerLayer):
    adapter_layer_names = ("supertuning_values", "supertuning_lora_A", "supertuning_lora_B", "supertuning_indices")
    other_param_names = ("supertuning_rank", "supertuning_lora_alpha", "supertuning_lora_dropout")
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear, save_indices: bool) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.supertuning_values = nn.ParameterDict()
        self.supertuning_indices = BufferDict(persistent=save_indices)
        self.supertuning_lora_A = nn.ModuleDict()
        self.supertuning_lora_B = nn.ModuleDict()
        self.supertuning_lora_dropout = nn.ModuleDict()
        self.supertuning_rank: dict[str, int] = {}
        self.supertuning_lora_alpha: dict[str, float] = {}

    def update_layer(
        self,
        adapter_name: str,
        sparsity: float,
        select_top: bool,
        r: int | None,
        lora_alpha: float | None,
        lora_dropout: float,
        init_weights: bool,
    ) -> None:
        weight = self.get_base_layer().weight.data
        count = support_size(weight.numel(), sparsity)
        if count < 1:
            raise ConfigError(
                f"sparsity={sparsity} leaves no trainable entry in a weight of {weight.numel()} entries "
                f"({self.out_features}x{self.in_features}); lower sparsity so at least one entry is trained."
            )
        _, positions = torch.topk(weight.abs().flatten(), k=count, largest=select_top)
        self.supertuning_indices[adapter_name] = positions.to(dtype=torch.int32, device=weight.device)
        # values and LoRA are created in Hugging Face PEFT's order and dtypes, so seeded starts agree
        if init_weights:
            values = torch.zeros(count, dtype=torch.float32, device=weight.device)
        else:
            values = torch.randn(count, dtype=torch.float32, device=weight.device)
        self.supertuning_values[adapter_name] = nn.Parameter(values)
        if r is None:
            self.supertuning_rank[adapter_name] = 0
            self.supertuning_lora_alpha[adapter_name] = 0.0
        else:
            self.supertuning_rank[adapter_name] = r
            self.supertuning_lora_alpha[adapter_name] = float(lora_alpha)
            factory = dict(bias=False, dtype=torch.float32, device=weight.device)
            self.supertuning_lora_A[adapter_name] = nn.Linear(self.in_features, r, **factory)
            self.supertuning_lora_B[adapter_name] = nn.Linear(r, self.out_features, **factory)
            nn.init.kaiming_uniform_(self.supertuning_lora_A[adapter_name].weight, a=math.sqrt(5))
            if init_weights:
                nn.init.zeros_(self.supertuning_lora_B[adapter_name].weight)
            else:
                nn.init.kaiming_uniform_(self.supertuning_lora_B[adapter_name].weight, a=math.sqrt(5))
            self.supertuning_lora_dropout[adapter_name] = dropout_module(lora_dropout)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    # -- the update --------------------------------------------------------------------------
    def _positions(self, name: str) -> torch.Tensor:
        return self.supertuning_indices[name].to(torch.int64)  # scatter needs int64 indices

    def _lora_delta(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        r, alpha = self.supertuning_rank[name], self.supertuning_lora_alpha[name]
        a, b = self.supertuning_lora_A[name].weight, self.supertuning_lora_B[name].weight
        return ((alpha / r) * (b @ a)).to(dtype)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """The dense `[out, in]` change: the values at their positions, plus the LoRA product."""
        weight = self.get_base_layer().weight
        values = self.supertuning_values[adapter_name].to(weight.dtype)
        sparse = torch.zeros_like(weight).reshape(-1).scatter_add(0, self._positions(adapter_name), values)
        sparse = sparse.reshape_as(weight)
        if self.supertuning_rank[adapter_name] > 0:
            return sparse + self._lora_delta(adapter_name, weight.dtype)
        return sparse

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return True

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        weight = self.get_base_layer().weight
        values = self.supertuning_values[adapter_name].detach().to(weight.dtype)
        with_lora = self.supertuning_rank[adapter_name] > 0
        with torch.no_grad():
            if safe_merge:
                merged = weight.data.reshape(-1).scatter_add(0, self._positions(adapter_name), values).reshape_as(weight)
                if with_lora:
                    merged = merged + self._lora_delta(adapter_name, weight.dtype)
                self._check_finite(merged, adapter_name)
                weight.data = merged
            else:
                weight.data.reshape(-1).scatter_add_(0, self._positions(adapter_name), values)
                if with_lora:
                    weight.data.add_(self._lora_delta(adapter_name, weight.dtype))

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        weight = self.get_base_layer().weight
        values = self.supertuning_values[adapter_name].detach().to(weight.dtype)
        with torch.no_grad():
            if self.supertuning_rank[adapter_name] > 0:
                weight.data.sub_(self._lora_delta(adapter_name, weight.dtype))
            weight.data.reshape(-1).scatter_add_(0, self._positions(adapter_name), -values)

    # -- forward -----------------------------------------------------------------------------
    def _adapted(self, x: torch.Tensor, names: list[str]) -> torch.Tensor:
        """`x` through `W + Σ sparse values` (one linear), then each adapter's LoRA added."""
        base = self.get_base_layer()
        weight = base.weight
        composed = weight.reshape(-1)
        for name in names:
            composed = composed.scatter_add(0, self._positions(name), self.supertuning_values[name].to(weight.dtype))
        result = F.linear(x, composed.reshape_as(weight), base.bias)
        for name in names:
            r = self.supertuning_rank[name]
            if r > 0:
                a = self.supertuning_lora_A[name]
                lora = self.supertuning_lora_B[name](a(self.supertuning_lora_dropout[name](x).to(a.weight.dtype)))
                result = result + ((self.supertuning_lora_alpha[name] / r) * lora).to(result.dtype)
        return result

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is None:
            names = [n for n in self.active_adapters if n in self.supertuning_values]
            if not names:
                return self.base_layer(x, *args, **kwargs)
            return self._adapted(x, names)  # the base layer's own forward (and its hooks) is not run, as in HF
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: a Super-Tuning layer got {x.shape[0]} rows but adapter_names has "
                f"{plan.batch_size} entries; the adapted layer must see the batch dimension first."
            )
        result = self.base_layer(x, *args, **kwargs)
        for name in plan.adapter_groups():
            if name in self.supertuning_values:
                rows = plan.rows(name, x.device)
                result[rows] = self._adapted(x[rows], [name]).to(result.dtype)
        return result
