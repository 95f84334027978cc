"""`GraloraLinear`: an `nn.Linear` (or GPT-2 `Conv1D`) plus a block-grid low-rank update per adapter.

Per adapter: `gralora_A [k, in/k, r]` and `gralora_B [k, r, out/k]`, plus an optional plain LoRA
pair `gralora_A_general` / `gralora_B_general` (`nn.Linear`s of rank `hybrid_r`). The input is cut
into `k` slices; slice `i` is projected by `A_i` to `r` features, which are cut into `k` groups of
`r/k`; output slice `j` reads group `j` of every input slice through `B_j`. Block `(j, i)` of the
update is thus `B_j[i-th group]ᵀ A_i[:, j-th group]ᵀ`, rank `r/k`. The dense update (for merging)
is the same computation applied to the identity.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from peft_core import ConfigError
from peft_core.tuners.mixed_batch import update_adapter_outputs
from peft_core.tuners.layer_containers import dropout_module
from peft_core.tuners.linear_layer import LinearLikeLayer


def grid_product(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The grid branch for `x [batch, length, in]` → `[batch, length, out]` (Hugging Face PEFT's einsums)."""
    k, _, r = a.shape
    batch, length, in_features = x.shape
    per_block = in_features // k
    projected = torch.einsum("blni, nir -> blnr", x.view(batch, length, k, per_block), a)
    regrouped = projected.view(batch, length, k, k, r // k).permute(0, 1, 3, 2, 4).reshape(batch, length, k, r)
    return torch.einsum("bljr, jro -> bljo", regrouped, b).reshape(batch, length, -1)


class GraloraLinear(LinearLikeLayer):
    adapter_layer_names = ("gralora_A", "gralora_B", "gralora_A_general", "gralora_B_general")
    other_param_names = ("r", "hybrid_r", "alpha", "scaling", "gralora_dropout", "gralora_k")
    container_types = {
        "gralora_A_general": nn.ModuleDict,
        "gralora_B_general": nn.ModuleDict,
        "gralora_dropout": nn.ModuleDict,
    }
    supports_mixed_batch = True

    def update_layer(
        self, adapter_name: str, r: int, hybrid_r: int, alpha: float, k: int, dropout: float, init_weights: bool
    ) -> None:
        if self.in_features % k or self.out_features % k:
            raise ConfigError(
                f"GraLoRA gralora_k={k} must divide the layer's input ({self.in_features}) and output "
                f"({self.out_features}) sizes."
            )
        self.r[adapter_name], self.hybrid_r[adapter_name], self.alpha[adapter_name] = r, hybrid_r, alpha
        self.gralora_k[adapter_name] = k
        self.scaling[adapter_name] = alpha / (r + hybrid_r)
        self.gralora_dropout[adapter_name] = dropout_module(dropout)
        # HF's order of random draws: per block A then B; then the hybrid pair's constructors and inits.
        blocks_a, blocks_b = [], []
        for _ in range(k):
            block_a = torch.empty(r, self.in_features // k)
            block_b = torch.empty(self.out_features // k, r)
            nn.init.kaiming_uniform_(block_a, a=math.sqrt(5))
            if init_weights:
                nn.init.zeros_(block_b)
            else:
                nn.init.kaiming_uniform_(block_b, a=math.sqrt(5))
            blocks_a.append(block_a)
            blocks_b.append(block_b)
        self.gralora_A[adapter_name] = nn.Parameter(torch.stack(blocks_a).transpose(1, 2).contiguous())
        self.gralora_B[adapter_name] = nn.Parameter(torch.stack(blocks_b).transpose(1, 2).contiguous())
        if hybrid_r > 0:
            general_a = nn.Linear(self.in_features, hybrid_r, bias=False)
            general_b = nn.Linear(hybrid_r, self.out_features, bias=False)
            nn.init.kaiming_uniform_(general_a.weight, a=math.sqrt(5))
            if init_weights:
                nn.init.zeros_(general_b.weight)
            else:
                nn.init.kaiming_uniform_(general_b.weight, a=math.sqrt(5))
        else:
            general_a, general_b = nn.Identity(), nn.Identity()
        self.gralora_A_general[adapter_name] = general_a
        self.gralora_B_general[adapter_name] = general_b
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _add(self, result: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
        """`result + scaling·grid(x) [+ scaling·hybrid(x)]`, rounded to `result`'s dtype at HF's steps."""
        a = self.gralora_A[name]
        dropout, scaling = self.gralora_dropout[name], self.scaling[name]
        lead = x.shape[:-1]
        x3 = x.unsqueeze(1) if x.dim() == 2 else x.reshape(-1, x.shape[-2], x.shape[-1]) if x.dim() > 3 else x
        grid = grid_product(dropout(x3.to(a.dtype)), a, self.gralora_B[name]).reshape(*lead, -1)
        result = result + scaling * grid.to(result.dtype)
        if self.hybrid_r[name] > 0:
            hybrid = self.gralora_B_general[name](self.gralora_A_general[name](dropout(x3.to(a.dtype))))
            result = result + scaling * hybrid.reshape(*lead, -1).to(result.dtype)
        return result

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        a = self.gralora_A[adapter_name]
        dtype = a.dtype
        upcast = a.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16)  # slow/imprecise on CPU
        work = torch.float32 if upcast else dtype
        identity = torch.eye(self.in_features, device=a.device, dtype=work).unsqueeze(1)
        delta = grid_product(identity, a.to(work), self.gralora_B[adapter_name].to(work)).reshape(self.in_features, -1).T
        if self.hybrid_r[adapter_name] > 0:
            general_a = self.gralora_A_general[adapter_name].weight.to(work)
            general_b = self.gralora_B_general[adapter_name].weight.to(work)
            delta = delta + general_b @ general_a
        delta = (delta.T if self.fan_in_fan_out else delta) * self.scaling[adapter_name]
        return delta.to(dtype) if upcast else delta

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        return update_adapter_outputs(x, result, self.active_adapters, self.gralora_A, self._add, "a GraLoRA layer")
