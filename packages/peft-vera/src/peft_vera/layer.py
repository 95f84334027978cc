"""VeRA layer: `y = base(x) + λ_b ⊙ (B[:out] @ (λ_d ⊙ (A[:, :in] @ dropout(x))))`.

`A` and `B` are the adapter's shared frozen projections, owned by the tuner (`VeraModel`); the layer
keeps a plain reference to the tuner's buffer dicts (not a submodule, so they are neither saved
nor moved twice) and trains only `vera_lambda_b [out]` and `vera_lambda_d [r]`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.layer_containers import dropout_module, refer_to_shared
from peft_core.tuners.linear_targets import is_transformers_conv1d as is_conv1d
from peft_core.tuners.precision import round_back, upcast_half_on_cpu
from peft_core.tuners.shared_tensors import sliced_shared
from peft_core.tuners.linear_layer import LinearLikeLayer



class VeraLinear(LinearLikeLayer):
    """VeRA on `nn.Linear` or transformers' `Conv1D` (`fan_in_fan_out=True`)."""

    adapter_layer_names = ("vera_lambda_b", "vera_lambda_d")
    other_param_names = ("vera_r", "vera_dropout")
    container_types = {"vera_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, vera_A: BufferDict, vera_B: BufferDict, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, fan_in_fan_out)
        refer_to_shared(self, vera_A=vera_A, vera_B=vera_B)

    def update_layer(self, adapter_name: str, r: int, vera_dropout: float, d_initial: float, init_weights: bool) -> None:
        if r <= 0:
            raise ValueError(f"VeRA rank r must be a positive integer, got {r}.")
        self.vera_r[adapter_name] = r
        self.vera_dropout[adapter_name] = dropout_module(vera_dropout)
        # Same draws as HF (ones, then randn(r)), so a seeded random init matches HF's.
        self.vera_lambda_b[adapter_name] = nn.Parameter(torch.ones(self.out_features))
        self.vera_lambda_d[adapter_name] = nn.Parameter(torch.randn(r))
        if init_weights:
            with torch.no_grad():
                self.vera_lambda_d[adapter_name].fill_(d_initial)
                self.vera_lambda_b[adapter_name].zero_()
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _sliced_projections(self, adapter_name: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return sliced_shared(self.vera_A, self.vera_B, adapter_name, self.in_features, self.out_features, like, "VeRA")

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        lambda_d = self.vera_lambda_d[adapter_name]
        lambda_b = self.vera_lambda_b[adapter_name]
        sliced_a, sliced_b = self._sliced_projections(adapter_name, lambda_d)
        x = self.vera_dropout[adapter_name](x.to(lambda_d.dtype))
        return lambda_b * F.linear(lambda_d * F.linear(x, sliced_a), sliced_b)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.vera_lambda_d  # y = base(x) + ΔW x

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        vectors = self.vera_lambda_d[adapter_name], self.vera_lambda_b[adapter_name]
        (lambda_d, lambda_b), half = upcast_half_on_cpu(*vectors)
        sliced_a, sliced_b = self._sliced_projections(adapter_name, lambda_d)
        delta = (lambda_b.unsqueeze(-1) * sliced_b) @ (lambda_d.unsqueeze(-1) * sliced_a)
        return round_back(delta.T if self.fan_in_fan_out else delta, half)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.vera_lambda_d, self._delta, "a VeRA layer", cast_to="base")
