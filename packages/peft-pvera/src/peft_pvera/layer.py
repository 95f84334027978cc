"""`PveraLinear`: PVeRA on an `nn.Linear` or a transformers `Conv1D`.

For an active adapter: `h = lambda_d ⊙ (A[:, :in] @ dropout(x))` (size 2r), `mean, logvar = h` split
in halves, `z = mean + ε·exp(logvar/2)` while training (or with `sample_at_inference`), else `z = mean`,
and `y = base(x) + lambda_b ⊙ (B[:out] @ z)`. Merging can only fold the mean path:
`ΔW = (lambda_b ⊙ B[:out]) @ (lambda_d[:r] ⊙ A[:r, :in])`.

`A` / `B` are the tuner's buffers (one pair per adapter); the layer keeps plain references to the
tuner's dicts (not submodules: saved once, as `base_model.pvera_A` / `pvera_B`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.layer_containers import dropout_module, refer_to_shared
from peft_core.tuners.precision import round_back, upcast_half_on_cpu
from peft_core.tuners.shared_tensors import sliced_shared
from peft_core.tuners.linear_layer import LinearLikeLayer


class PveraLinear(LinearLikeLayer):
    adapter_layer_names = ("pvera_lambda_b", "pvera_lambda_d")
    other_param_names = ("pvera_r", "pvera_dropout", "sample_at_inference", "pvera_generator")
    # pvera_generator: one CPU generator per adapter and layer (torch generators don't follow .to())
    container_types = {"pvera_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, pvera_A: BufferDict, pvera_B: BufferDict, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, fan_in_fan_out)
        refer_to_shared(self, pvera_A=pvera_A, pvera_B=pvera_B)

    def update_layer(
        self,
        adapter_name: str,
        r: int,
        dropout: float,
        d_initial: float,
        init_weights: bool,
        sample_at_inference: bool,
        generator_seed: int | None,
    ) -> None:
        self.pvera_r[adapter_name] = r
        self.sample_at_inference[adapter_name] = sample_at_inference
        self.pvera_generator[adapter_name] = (
            None if generator_seed is None else torch.Generator().manual_seed(generator_seed)
        )
        self.pvera_dropout[adapter_name] = dropout_module(dropout)
        # HF's draws (ones, then randn(2r)), so seeded random inits agree
        lambda_b = torch.ones(self.out_features)
        lambda_d = torch.randn(2 * r)
        if init_weights:
            lambda_d.fill_(d_initial)
            lambda_b.zero_()
        self.pvera_lambda_b[adapter_name] = nn.Parameter(lambda_b)
        self.pvera_lambda_d[adapter_name] = nn.Parameter(lambda_d)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _projections(self, adapter_name: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return sliced_shared(self.pvera_A, self.pvera_B, adapter_name, self.in_features, self.out_features, like, "PVeRA")

    def _sample(self, mean: torch.Tensor, logvar: torch.Tensor, adapter_name: str) -> torch.Tensor:
        if not (self.training or self.sample_at_inference[adapter_name]):
            return mean
        std = torch.exp(0.5 * logvar)
        generator = self.pvera_generator[adapter_name]
        if generator is None:
            noise = torch.randn_like(std)
        else:
            noise = torch.randn(std.shape, dtype=std.dtype, generator=generator).to(std.device)
        return mean + noise * std

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        lambda_d = self.pvera_lambda_d[adapter_name]
        lambda_b = self.pvera_lambda_b[adapter_name]
        sliced_a, sliced_b = self._projections(adapter_name, lambda_d)
        x = x.to(lambda_d.dtype)
        mean, logvar = (lambda_d * F.linear(self.pvera_dropout[adapter_name](x), sliced_a)).chunk(2, dim=-1)
        return lambda_b * F.linear(self._sample(mean, logvar, adapter_name), sliced_b)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        # y = base(x) + ΔW x only while the mean is used (no sampling)
        return adapter_name in self.pvera_lambda_d and not self.sample_at_inference.get(adapter_name, False)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        vectors = self.pvera_lambda_d[adapter_name], self.pvera_lambda_b[adapter_name]
        (lambda_d, lambda_b), half = upcast_half_on_cpu(*vectors)
        sliced_a, sliced_b = self._projections(adapter_name, lambda_d)
        r = lambda_d.shape[0] // 2
        delta = (lambda_b.unsqueeze(-1) * sliced_b) @ (lambda_d[:r].unsqueeze(-1) * sliced_a[:r])
        return round_back(delta.T if self.fan_in_fan_out else delta, half)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.pvera_lambda_d, self._delta, "a PVeRA layer", cast_to="input")
