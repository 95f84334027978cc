"""`OSFLinear`: an `nn.Linear` whose low singular subspace is retrained.

The base weight stays as it is; the layer adds `ΔW = U_low S_low V_low - U_low₀ S_low₀ V_low₀` (the
trained low part minus its initial value), computed as one rank-`2r` product
`[U_low S_low, -U_low₀ S_low₀] [V_low; V_low₀]` so the full `ΔW` is never built in the forward pass.
The initial low part and (where a factor is not square) the frozen high part are buffers rebuilt
from the base weight's SVD when the adapter is created, so files hold only the trained tensors.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer, current_batch_plan
from peft_core.tuners.buffers import BufferDict

from .subspace import project_gradient, split_weight

# Frozen per-adapter tensors (buffers, never saved): the initial low part and the non-square high part.
FROZEN = ("osf_U_low_init", "osf_S_low_init", "osf_V_low_init", "osf_U_high", "osf_V_high")


class OSFLinear(BaseTunerLayer):
    """OSF on `nn.Linear`."""

    adapter_layer_names = ("osf_svd_params",)
    other_param_names = (*FROZEN, "osf_effective_rank")
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        self.out_features, self.in_features = base.weight.shape
        self.osf_svd_params = nn.ModuleDict()
        for name in FROZEN:
            setattr(self, name, BufferDict(persistent=False))
        self.osf_effective_rank: dict[str, int] = {}

    def update_layer(self, adapter_name: str, effective_rank: int, init_weights: bool) -> None:
        split = split_weight(self.get_base_layer().weight, effective_rank)
        self.osf_effective_rank[adapter_name] = effective_rank
        self.osf_U_low_init[adapter_name] = split.u_low.clone()
        self.osf_S_low_init[adapter_name] = split.s_low.clone()
        self.osf_V_low_init[adapter_name] = split.v_low.clone()
        # A square factor's complement is spanned by its initial low part; keep the high part otherwise.
        if self.out_features > self.in_features:
            self.osf_U_high[adapter_name] = split.u_high
        if self.out_features < self.in_features:
            self.osf_V_high[adapter_name] = split.v_high
        if init_weights is False:  # Hugging Face PEFT's draws, in its order
            trained = (torch.randn_like(split.u_low), torch.randn_like(split.s_low), torch.randn_like(split.v_low))
        else:
            trained = (split.u_low, split.s_low, split.v_low)
        self.osf_svd_params[adapter_name] = nn.ParameterDict(
            {"U_low": nn.Parameter(trained[0]), "S_low": nn.Parameter(trained[1]), "V_low": nn.Parameter(trained[2])}
        )

    # -- the update -------------------------------------------------------------------------------
    def _frozen(self, name: str, adapter_name: str) -> torch.Tensor | None:
        store = getattr(self, name)
        return store[adapter_name] if adapter_name in store else None

    def _factors(self, adapter_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """`(A [out, 2r], B [2r, in])` with `ΔW = A B` (Hugging Face PEFT's operations)."""
        params = self.osf_svd_params[adapter_name]
        u_init, s_init, v_init = (self._frozen(n, adapter_name) for n in FROZEN[:3])
        u_low = project_gradient(params["U_low"], self._frozen("osf_U_high", adapter_name), u_init, left=True)
        v_low = project_gradient(params["V_low"], self._frozen("osf_V_high", adapter_name), v_init, left=False)
        a = torch.cat([u_low * params["S_low"].unsqueeze(0), -(u_init * s_init.unsqueeze(0))], dim=1)
        b = torch.cat([v_low, v_init], dim=0)
        return a, b

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        params = self.osf_svd_params[adapter_name]
        u_init, s_init, v_init = (self._frozen(n, adapter_name) for n in FROZEN[:3])
        current = torch.mm(params["U_low"] * params["S_low"].unsqueeze(0), params["V_low"])
        initial = torch.mm(u_init * s_init.unsqueeze(0), v_init)
        return current - initial

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        a, b = self._factors(adapter_name)
        return F.linear(F.linear(x.to(a.dtype), b), a)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        base_only = self._unmerge_if_disabled() or self.merged  # (unmerges first when disabled)
        result = self.base_layer(x, *args, **kwargs)
        if base_only:
            return result
        plan = current_batch_plan()
        if plan is None:  # every active adapter on every row
            for name in (n for n in self.active_adapters if n in self.osf_svd_params):
                result = result + self._delta(x, name).to(x.dtype)
            return result
        updated = result.clone()  # a mixed-adapter batch: each row with its own adapter (or none)
        for name in (n for n in plan.adapter_groups() if n in self.osf_svd_params):
            rows = plan.rows(name, x.device)
            updated[rows] = updated[rows] + self._delta(x[rows], name).to(result.dtype)
        return updated
