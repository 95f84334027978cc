"""HiRA layers: the update is the Hadamard product `W ⊙ ΔH` of the frozen weight and `ΔH = B A`.

`HiraLayer` holds what every layer type shares: the per-adapter containers, the dropout, and
merging. Merging follows Hugging Face PEFT: the weight before the first merge is kept (on the CPU),
each merge adds `W₀ ⊙ ΔH`, and unmerging the last merged adapter restores `W₀` exactly.
`HiraLinear` adapts `nn.Linear` and transformers' `Conv1D`:
`y = base(x) + dropout(x) (W ⊙ B A)ᵀ`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.layer_containers import dropout_module
from peft_core.tuners.weight_snapshot import restore_weight_before_merge, weight_before_merge

from .config import is_gaussian


class HiraLayer(BaseTunerLayer):
    adapter_layer_names = ("hira_A", "hira_B", "hira_embedding_A", "hira_embedding_B")
    other_param_names = ("hira_r", "hira_dropout")
    container_types = {"hira_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self._weight_before_merge: torch.Tensor | None = None

    def _factors(self, adapter_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hira_A[adapter_name], self.hira_B[adapter_name]

    def _holds(self, adapter_name: str) -> bool:
        return adapter_name in self.hira_A

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """ΔH in the base weight's layout. 16-bit factors on CPU are multiplied in fp32 (as HF does)."""
        a, b = self._factors(adapter_name)
        dtype = b.dtype
        if b.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
            return self._delta_from(a.float(), b.float()).to(dtype)
        return self._delta_from(a, b)

    def _delta_from(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """ΔH from the factors `a`, `b` (already in the dtype to multiply in)."""
        raise NotImplementedError

    def _add_common(self, adapter_name: str, r: int, dropout: float) -> None:
        self.hira_r[adapter_name] = r
        self.hira_dropout[adapter_name] = dropout_module(dropout)

    # -- merging: W += W₀ ⊙ ΔH ------------------------------------------------------------------------
    def _original_weight(self) -> torch.Tensor:
        return weight_before_merge(self)

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        weight = self.get_base_layer().weight
        merged = weight.data + self._original_weight() * self.get_delta_weight(adapter_name).to(weight.dtype)
        if safe_merge:
            self._check_finite(merged, adapter_name)
        weight.data.copy_(merged)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        if not self.merged_adapters and restore_weight_before_merge(self):  # the last one: W₀ exactly
            return
        weight = self.get_base_layer().weight
        weight.data -= self._original_weight() * self.get_delta_weight(adapter_name).to(weight.dtype)

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return False  # get_delta_weight is ΔH, a factor of the update, not the update itself

    # -- forward ----------------------------------------------------------------------------------------
    def _update_output(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        """The adapter's additive term for input `x`."""
        raise NotImplementedError

    def _held(self) -> list[str]:
        return [name for name in self.adapter_names() if self._holds(name)]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self._held(), self._update_output, "a HiRA layer", cast_to="base")


def init_low_rank(a: torch.Tensor, b: torch.Tensor, init_weights: object, r: int) -> None:
    """HF's init of the linear / conv factors (drawn N(0, 1) first, so seeded random inits agree)."""
    if not init_weights:
        return
    with torch.no_grad():
        if is_gaussian(init_weights) and a.dim() == 2:
            nn.init.normal_(a, std=1 / r)
        else:
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        nn.init.zeros_(b)


class HiraLinear(HiraLayer):
    """HiRA on `nn.Linear` or transformers' `Conv1D` (`fan_in_fan_out`: weight stored `[in, out]`)."""

    def __init__(self, base_layer: nn.Module, in_features: int, out_features: int, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer)
        self.in_features, self.out_features = in_features, out_features
        self.fan_in_fan_out = fan_in_fan_out

    def update_layer(self, adapter_name: str, r: int, dropout: float, init_weights: object) -> None:
        self._add_common(adapter_name, r, dropout)
        a = torch.randn(r, self.in_features)
        b = torch.randn(self.out_features, r)
        init_low_rank(a, b, init_weights, r)
        self.hira_A[adapter_name] = nn.Parameter(a)
        self.hira_B[adapter_name] = nn.Parameter(b)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _weight_out_in(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        return weight.T if self.fan_in_fan_out else weight

    def _delta_from(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """ΔH = B A (`[in, out]` for Conv1D)."""
        delta = b @ a
        return delta.T if self.fan_in_fan_out else delta

    def _update_output(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        a, b = self._factors(adapter_name)
        product = torch.mm(a.T, b.T)  # (B A)ᵀ, computed as HF does (bit-identical outputs)
        x = x.to(a.dtype)
        return F.linear(self.hira_dropout[adapter_name](x), self._weight_out_in() * product.T)
