"""`PsoftLinear`: PSOFT on an `nn.Linear`.

Per adapter: `psoft_R` (a `PsoftRotation`, the only trained and saved part) and the frozen subspace
`A [r, in]` / `B [out, r]` in non-persistent buffers, rebuilt from the base weight when the adapter is
created. Forward: `y = base(x) + scaling · ((x_a Rᵀ) - x_a) Bᵀ` with `x_a = dropout(x) Aᵀ`;
merged: `W += scaling · B (R - I) A`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core import BaseTunerLayer, ConfigError
from peft_core.tuners.layer_containers import dropout_module, unsaved_buffers

from .rotation import PsoftRotation
from .subspace import subspace


class PsoftLinear(BaseTunerLayer):
    adapter_layer_names = ("psoft_R",)
    other_param_names = ("psoft_r", "psoft_scaling", "psoft_dropout", "psoft_A", "psoft_B")
    container_types = {
        "psoft_R": nn.ModuleDict,
        "psoft_dropout": nn.ModuleDict,
        "psoft_A": unsaved_buffers,
        "psoft_B": unsaved_buffers,
    }
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, config: Any) -> None:
        r = config.r
        if r > min(self.in_features, self.out_features):
            raise ConfigError(
                f"PSOFT r={r} must not exceed min(in_features, out_features) = "
                f"{min(self.in_features, self.out_features)} of the adapted layer; lower r."
            )
        self.psoft_r[adapter_name] = r
        self.psoft_scaling[adapter_name] = config.psoft_alpha / r
        self.psoft_dropout[adapter_name] = dropout_module(config.psoft_dropout)
        self.psoft_R[adapter_name] = PsoftRotation(
            r,
            orth=config.psoft_orth,
            mag_b=config.psoft_mag_b,
            mag_a=config.psoft_mag_a,
            use_cayley_neumann=config.use_cayley_neumann,
            num_cayley_neumann_terms=config.num_cayley_neumann_terms,
            cayley_neumann_eps=config.cayley_neumann_eps,
        )
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.psoft_R[adapter_name].reset(config.init_weights)
        a, b = subspace(
            self.get_base_layer().weight,
            r,
            self.psoft_scaling[adapter_name],
            config.ab_svd_init,
            config.psoft_svd,
            config.psoft_svd_lowrank_niter,
            config.random_seed,
        )
        self.psoft_A[adapter_name] = a
        self.psoft_B[adapter_name] = b

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.psoft_R

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        weight = self.get_base_layer().weight
        half_on_cpu = weight.device.type == "cpu" and weight.dtype in (torch.float16, torch.bfloat16)
        compute = torch.float32 if half_on_cpu else weight.dtype
        a = self.psoft_A[adapter_name].to(device=weight.device, dtype=compute)
        b = self.psoft_B[adapter_name].to(device=weight.device, dtype=compute)
        rotation = self.psoft_R[adapter_name].matrix().to(device=weight.device, dtype=compute)
        eye = torch.eye(self.psoft_r[adapter_name], device=weight.device, dtype=compute)
        delta = b @ (rotation - eye) @ a
        return (delta * self.psoft_scaling[adapter_name]).to(weight.dtype)

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        a, b = self.psoft_A[adapter_name], self.psoft_B[adapter_name]
        x = self.psoft_dropout[adapter_name](x.to(a.dtype))
        projected = x @ a.to(device=x.device, dtype=x.dtype).t()
        rotated = self.psoft_R[adapter_name](projected)
        return ((rotated - projected) @ b.to(device=x.device, dtype=x.dtype).t()) * self.psoft_scaling[adapter_name]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.psoft_R, self._delta, "a PSOFT layer", cast_to="base")
