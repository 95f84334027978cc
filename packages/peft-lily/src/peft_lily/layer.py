"""`LilyLinear`: Lily on an `nn.Linear`.

Per adapter: `lily_A` (`nn.Linear(in, r)`, possibly shared with neighbouring layers), `lily_B`
(`nn.Linear(out, num_B·r)`, whose weight holds the `num_B` experts `[r, out]`, shared by the layer's
group) and its own `lily_router` (`nn.Linear(r, num_B)`). Forward:
`h = A x`, `p = mean over every token of the batch of softmax(router(h))`, `y = base(x) + scaling · h Σ_e p_e B_e`.
The router's average runs over the whole batch, so one row's output depends on the others: Lily
can't merge (the update depends on the input) and refuses mixed-adapter batches.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer


class LilyLinear(BaseTunerLayer):
    adapter_layer_names = ("lily_A", "lily_B", "lily_router")
    other_param_names = ("lily_r", "lily_scaling", "lily_num_B")
    container_types = {"lily_A": nn.ModuleDict, "lily_B": nn.ModuleDict, "lily_router": nn.ModuleDict}
    features_from_base = True
    supports_mixed_batch = False

    def update_layer(self, adapter_name: str, r: int, num_B: int, scaling: float, init_weights: bool) -> None:
        self.lily_r[adapter_name] = r
        self.lily_scaling[adapter_name] = scaling
        self.lily_num_B[adapter_name] = num_B
        # created and initialised in HF's order, so seeded inits agree
        a = nn.Linear(self.in_features, r, bias=False)
        b = nn.Linear(self.out_features, num_B * r, bias=False)
        router = nn.Linear(r, num_B, bias=False)
        if not a.weight.is_meta:
            nn.init.kaiming_uniform_(a.weight, a=math.sqrt(5))
            nn.init.kaiming_uniform_(router.weight, a=math.sqrt(5))
            if init_weights:
                nn.init.zeros_(b.weight)
            else:
                nn.init.kaiming_uniform_(b.weight, a=math.sqrt(5))
        self.lily_A[adapter_name] = a
        self.lily_B[adapter_name] = b
        self.lily_router[adapter_name] = router
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def share(self, adapter_name: str, a: nn.Linear | None, b: nn.Linear | None) -> None:
        """Use another layer's `A` and / or `B` modules for `adapter_name` (the group's shared ones)."""
        if a is not None:
            self.lily_A[adapter_name] = a
        if b is not None:
            self.lily_B[adapter_name] = b

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        a, b, router = self.lily_A[adapter_name], self.lily_B[adapter_name], self.lily_router[adapter_name]
        num_b = self.lily_num_B[adapter_name]
        experts = b.weight.reshape(num_b, -1, b.weight.shape[1])  # [num_B, r, out]
        hidden = a(x.to(a.weight.dtype))
        weights = F.softmax(router(hidden), dim=-1).reshape(-1, num_b).mean(dim=0)
        return torch.matmul(hidden, torch.einsum("e,eio->io", weights, experts)) * self.lily_scaling[adapter_name]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if self._disable_adapters:
            return result
        dtype = result.dtype
        for name in self.active_adapters:
            if name in self.lily_A:
                result = result + self._delta(x, name).to(dtype)
        return result
