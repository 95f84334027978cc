"""`UniLoraLinear`: an `nn.Linear` (or GPT-2 `Conv1D`) whose LoRA factors are read from a shared vector.

Per adapter the layer holds the fixed `unilora_indices_A [r, in]` / `unilora_indices_B [out, r]`
(int64) and `unilora_scales_A` / `unilora_scales_B` (in the base weight's dtype), all buffers, saved
only with `save_indices`. `θ` itself lives on the tuner (`UniLoraModel.unilora_theta_d`, saved once as
`base_model.unilora_theta_d`); the layer keeps a plain reference to that dict. With
`A = θ[indices_A] · scales_A` and `B = θ[indices_B] · scales_B`: `y = base(x) + B(A(dropout(x)))`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core.tuners.layer_containers import dropout_module, refer_to_shared, saved_buffers
from peft_core.tuners.linear_layer import LinearLikeLayer

INDEX_BUFFERS = ("unilora_indices_A", "unilora_indices_B", "unilora_scales_A", "unilora_scales_B")


class UniLoraLinear(LinearLikeLayer):
    adapter_layer_names = INDEX_BUFFERS
    other_param_names = ("r", "unilora_dropout")
    container_types = {**dict.fromkeys(INDEX_BUFFERS, saved_buffers), "unilora_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, theta_d: nn.ParameterDict, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, fan_in_fan_out)
        refer_to_shared(self, theta_d=theta_d)

    def update_layer(self, adapter_name: str, r: int, dropout: float, theta_d_length: int, save_indices: bool) -> None:
        """Placeholders for the indices (the tuner assigns the real ones once every layer exists)."""
        self.r[adapter_name] = r
        self.unilora_dropout[adapter_name] = dropout_module(dropout)
        # drawn as Hugging Face PEFT draws its placeholders, so the global RNG advances the same way
        device = self._device()
        placeholder_a = torch.randint(0, theta_d_length, (r, self.in_features), dtype=torch.long, device=device)
        placeholder_b = torch.randint(0, theta_d_length, (self.out_features, r), dtype=torch.long, device=device)
        self.set_indices(adapter_name, placeholder_a, placeholder_b, save_indices)

    def set_indices(self, adapter_name: str, indices_a: torch.Tensor, indices_b: torch.Tensor, save: bool) -> None:
        device = self._device()
        self.unilora_indices_A.set(adapter_name, indices_a.to(device), persistent=save)
        self.unilora_indices_B.set(adapter_name, indices_b.to(device), persistent=save)

    def set_scales(self, adapter_name: str, scales_a: torch.Tensor, scales_b: torch.Tensor, save: bool) -> None:
        """Scales take the base weight's device and dtype (as in Hugging Face PEFT)."""
        weight = self.get_base_layer().weight
        kwargs = dict(device=self._device()) if weight.is_meta else dict(device=weight.device, dtype=weight.dtype)
        self.unilora_scales_A.set(adapter_name, scales_a.to(**kwargs), persistent=save)
        self.unilora_scales_B.set(adapter_name, scales_b.to(**kwargs), persistent=save)

    def _device(self) -> torch.device:
        weight = self.get_base_layer().weight
        return torch.device("cpu") if weight.is_meta else weight.device

    # -- the update --------------------------------------------------------------------------
    def factors(self, name: str, float32: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """`A [r, in]` and `B [out, r]` of adapter `name`."""
        indices_a, indices_b = self.unilora_indices_A[name], self.unilora_indices_B[name]
        theta = self.theta_d[name].to(indices_a.device)
        scales_a = self.unilora_scales_A[name].to(indices_a.device)
        scales_b = self.unilora_scales_B[name].to(indices_b.device)
        if float32:
            theta, scales_a, scales_b = theta.float(), scales_a.float(), scales_b.float()
        return theta[indices_a] * scales_a, theta[indices_b] * scales_b

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        dtype = self.theta_d[adapter_name].dtype
        # half-precision matmuls on the CPU are computed in float32 (as in Hugging Face PEFT)
        upcast = self.unilora_indices_A[adapter_name].device.type == "cpu" and dtype in (torch.float16, torch.bfloat16)
        a, b = self.factors(adapter_name, float32=upcast)
        delta = b @ a
        delta = delta.T if self.fan_in_fan_out else delta
        return delta.to(dtype) if upcast else delta

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return True

    def _added(self, x: torch.Tensor, name: str) -> torch.Tensor:
        a, b = self.factors(name)
        return F.linear(F.linear(self.unilora_dropout[name](x.to(self.theta_d[name].dtype)), a), b)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        held = self.unilora_indices_A
        return self.additive_forward(x, args, kwargs, held, self._added, "a Uni-LoRA layer", cast_to="input")
