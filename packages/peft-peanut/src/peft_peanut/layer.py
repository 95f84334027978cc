"""`PeanutLinear`: an `nn.Linear` plus a weight-aware update per adapter.

The update is a function of the frozen weight `W [out, in]`: each of its `in` columns goes through
`A [r, out]`, an encoder/decoder stack (`r → r`, residuals between matching depths) and `B [out, r]`:

    h₀ = f(Wᵀ Aᵀ),  hᵢ = f(encᵢ(hᵢ₋₁)) (i = 1..d),  g = hd,  g = f(decⱼ(g)) + h_{d−j} (j = 1..d)
    ΔW = scaling · (g Bᵀ)ᵀ,          y = base(x) + x ΔWᵀ

Because `ΔW` depends on `W`, merging keeps a copy of the weight from before the first merge: every
merged adapter's update is computed from it, and unmerging restores it exactly (Hugging Face PEFT's
scheme). Per adapter the encoders and decoders are `nn.ModuleList`s, so saved keys read
`peanut_encoders.0.weight` (the adapter name sits before the list index in the model's keys).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from peft_core import BaseTunerLayer, current_batch_plan

from .activations import activation


class PeanutLinear(BaseTunerLayer):
    adapter_layer_names = ("peanut_A", "peanut_B", "peanut_encoders", "peanut_decoders")
    other_param_names = ("r", "depth", "scaling", "act_fn")
    container_types = {
        "peanut_A": nn.ModuleDict,
        "peanut_B": nn.ModuleDict,
        "peanut_encoders": nn.ModuleDict,
        "peanut_decoders": nn.ModuleDict,
    }
    features_from_base = True
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        # the base weight before the first merge (CPU), while something is merged
        self.__dict__["weight_before_merge"] = None

    def update_layer(self, adapter_name: str, r: int, depth: int, act_fn: str, scaling: float, init_weights: bool) -> None:
        self.r[adapter_name] = r
        self.depth[adapter_name] = depth
        self.scaling[adapter_name] = scaling
        self.act_fn[adapter_name] = act_fn
        # built and initialised in Hugging Face PEFT's order, so seeded random starts agree
        self.peanut_A[adapter_name] = nn.Linear(self.out_features, r, bias=False)
        self.peanut_encoders[adapter_name] = nn.ModuleList([nn.Linear(r, r, bias=False) for _ in range(depth)])
        self.peanut_decoders[adapter_name] = nn.ModuleList([nn.Linear(r, r, bias=False) for _ in range(depth)])
        self.peanut_B[adapter_name] = nn.Linear(r, self.out_features, bias=False)
        kaiming = dict(a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.peanut_A[adapter_name].weight, **kaiming)
        for module in (*self.peanut_encoders[adapter_name], *self.peanut_decoders[adapter_name]):
            nn.init.kaiming_uniform_(module.weight, **kaiming)
        if init_weights:
            nn.init.zeros_(self.peanut_B[adapter_name].weight)
        else:
            nn.init.kaiming_uniform_(self.peanut_B[adapter_name].weight, **kaiming)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    # -- the update --------------------------------------------------------------------------
    def delta_from(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        """`ΔW [out, in]` of adapter `name` computed from the base weight `weight`."""
        f = activation(self.act_fn[name])
        a = self.peanut_A[name]
        hidden = f(torch.matmul(weight.transpose(0, 1).to(a.weight.dtype), a.weight.t()))
        skips = []
        for encoder in self.peanut_encoders[name]:
            skips.append(hidden)
            hidden = f(encoder(hidden))
        for decoder, skip in zip(self.peanut_decoders[name], reversed(skips)):
            hidden = f(decoder(hidden)) + skip
        return (self.peanut_B[name](hidden) * self.scaling[name]).transpose(0, 1)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        return self.delta_from(adapter_name, self.get_base_layer().weight)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return True

    def _added(self, x: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
        delta = self.get_delta_weight(name)
        return torch.matmul(x.to(delta.dtype), delta.transpose(0, 1)).to(dtype)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is None:
            for name in self.active_adapters:
                if name in self.peanut_A:
                    result = result + self._added(x, name, result.dtype)
            return result
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: a PEANuT layer got {x.shape[0]} rows but adapter_names has {plan.batch_size} "
                f"entries; the adapted layer must see the batch dimension first."
            )
        for name in plan.adapter_groups():
            if name in self.peanut_A:
                rows = plan.rows(name, x.device)
                result[rows] = result[rows] + self._added(x[rows], name, result.dtype)
        return result

    # -- merging -----------------------------------------------------------------------------
    def _original_weight(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        if self.weight_before_merge is None:
            self.__dict__["weight_before_merge"] = weight.data.detach().clone().cpu()
        return self.weight_before_merge.to(device=weight.device, dtype=weight.dtype)

    def merge(self, safe_merge: bool = False, adapter_names: Sequence[str] | None = None) -> None:
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        names = [n for n in names if n in self.peanut_A and n not in self.merged_adapters]
        if not names:
            return
        original = self._original_weight()
        base = self.get_base_layer()
        for name in names:
            with torch.no_grad():
                delta = self.delta_from(name, original).to(dtype=base.weight.dtype, device=base.weight.device)
                self.add_to_base_weight(delta, name, safe_merge)
            self.merged_adapters.append(name)

    def unmerge(self) -> None:
        if not self.merged_adapters:
            return
        weight = self.get_base_layer().weight
        with torch.no_grad():
            weight.data.copy_(self.weight_before_merge.to(device=weight.device, dtype=weight.dtype))
        self.__dict__["weight_before_merge"] = None
        self.merged_adapters.clear()
