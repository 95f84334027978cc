"""`RandLoraLinear`: an `nn.Linear` (or GPT-2 `Conv1D`) plus a RandLoRA update per adapter.

The layer trains `randlora_lambda [r, n]` and `randlora_gamma [n, min(in, out)]` and reads the
adapter's shared frozen bases from the tuner's buffer dicts, registered here too (as Hugging Face
PEFT does, so the model keys and the saved per-layer copies `<layer>.randlora_A/B` are HF's).

With `A [r, 1, min]` and `B [max, n, r]` sliced to this layer, the scaled small basis is
`U = (λ[:, :, None] · A) · γ[None]` flattened to `[r·n, min]` and `V = B` flattened to `[max, n·r]`;
the update maps the smaller side through `U` and the larger through `V`, times `alpha / r`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import AdapterTensor
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.layer_containers import dropout_module
from peft_core.tuners.linear_layer import LinearLikeLayer

from .bases import basis_count


class RandLoraLinear(LinearLikeLayer):
    adapter_layer_names = ("randlora_lambda", "randlora_gamma")
    other_param_names = ("r", "scaling", "num_bases", "randlora_dropout")
    container_types = {"randlora_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, randlora_A: BufferDict, randlora_B: BufferDict, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, fan_in_fan_out)
        self.randlora_A = randlora_A  # the tuner's shared bases (submodules here as in HF)
        self.randlora_B = randlora_B

    def update_layer(self, adapter_name: str, r: int, alpha: float, dropout: float, init_weights: bool) -> None:
        small, large = sorted((self.in_features, self.out_features))
        count = basis_count(small, r)
        self.r[adapter_name] = r
        self.num_bases[adapter_name] = count
        self.scaling[adapter_name] = alpha / r
        self.randlora_dropout[adapter_name] = dropout_module(dropout)
        # HF's draws and values: lambda ~ N(0, 1), gamma = 1 / max(in, out) ...
        lam = torch.randn(r, count)
        gamma = torch.ones(count, small) / large
        if init_weights:  # ... or lambda = 0 (a no-op) and gamma = 1 / max(gamma's shape)
            lam.zero_()
            gamma.fill_(1 / max(gamma.shape))
        self.randlora_lambda[adapter_name] = nn.Parameter(lam)
        self.randlora_gamma[adapter_name] = nn.Parameter(gamma)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """HF also saves each layer's reference to the shared bases (when they are saved at all)."""
        out = super().adapter_tensors(adapter_name)
        if adapter_name in self.randlora_lambda:
            for attr in ("randlora_A", "randlora_B"):
                store: BufferDict = self._modules[attr]
                if adapter_name in store and store.is_persistent(adapter_name):
                    out.append(AdapterTensor(attr, f"{attr}.{adapter_name}", store[adapter_name]))
        return out

    def _factors(self, name: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """`(first, second)` with `update(x) = F.linear(F.linear(x, first), second)`."""
        if name not in self.randlora_A:
            raise RuntimeError(
                f"RandLoRA adapter {name!r} has no bases; the tuner that created it was unloaded. Re-create the "
                f"adapter with get_peft_model."
            )
        basis_a, basis_b = self.randlora_A[name], self.randlora_B[name]
        lam, gamma = self.randlora_lambda[name].to(device), self.randlora_gamma[name].to(device)
        if device.type == "cpu" and basis_b.dtype in (torch.float16, torch.bfloat16):  # slow/imprecise on CPU
            basis_a, basis_b, lam, gamma = basis_a.float(), basis_b.float(), lam.float(), gamma.float()
        small, large = sorted((self.in_features, self.out_features))
        count = self.num_bases[name]
        sliced_a = basis_a[:, :count, :small].to(device)
        sliced_b = basis_b[:large, :count, :].to(device)
        scaled_small = (lam[:, :, None] * sliced_a * gamma[None]).flatten(end_dim=1)  # [r·n, small]
        large_basis = sliced_b.flatten(start_dim=1)  # [large, n·r]
        if small == self.in_features:
            return scaled_small, large_basis
        return large_basis.T, scaled_small.T

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        first, second = self._factors(adapter_name, self.randlora_B[adapter_name].device)
        delta = (first.T @ second.T).T  # HF's product order (same bits)
        if self.fan_in_fan_out:
            delta = delta.T
        return delta * self.scaling[adapter_name]

    def _delta(self, x: torch.Tensor, name: str) -> torch.Tensor:
        first, second = self._factors(name, x.device)
        x = x.to(second.dtype)
        return F.linear(F.linear(self.randlora_dropout[name](x), first), second) * self.scaling[name]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.randlora_lambda, self._delta, "a RandLoRA layer", cast_to="input")
