"""`LoHaLayer`: the Hadamard product of two low-rank products, on Linear, Conv1d and Conv2d.

Parameters per adapter (parameter-backed, so saved keys have no `.weight`), for a base weight with
`out` rows and `in` inputs (`in/groups * prod(kernel)` for a convolution):

- plain: `hada_w1_a [out, r]`, `hada_w1_b [r, in]`, `hada_w2_a [out, r]`, `hada_w2_b [r, in]`;
  ΔW = (w1_a @ w1_b) * (w2_a @ w2_b) * scale, reshaped to the base weight;
- effective conv (kernel > 1 and `use_effective_conv2d`): `hada_t1`, `hada_t2 [r, r, kh, kw]`
  (Conv1d: `[r, r, k, 1]`), `hada_w*_a [r, out]`, `hada_w*_b [r, in/groups]`; each factor is the
  Tucker-style product `t[i,j,k,l] · w_b[j,r] · w_a[i,p] -> [p, r, k, l]`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from peft_core.tuners.lycoris import LycorisLayer


def _kaiming(param: torch.Tensor) -> None:
    nn.init.kaiming_uniform_(param, a=math.sqrt(5))


def hadamard_product(
    w1_a: torch.Tensor, w1_b: torch.Tensor, w2_a: torch.Tensor, w2_b: torch.Tensor, scale: float
) -> torch.Tensor:
    """(w1_a @ w1_b) ⊙ (w2_a @ w2_b) · scale."""
    return ((w1_a @ w1_b) * (w2_a @ w2_b)) * scale


def _tucker(core: torch.Tensor, w_a: torch.Tensor, w_b: torch.Tensor) -> torch.Tensor:
    # core [r, r, kh, kw], w_b [r, in], w_a [r, out] -> [out, in, kh, kw]
    return torch.einsum("i j k l, j r, i p -> p r k l", core, w_b, w_a)


def hadamard_product_cp(
    t1: torch.Tensor,
    w1_a: torch.Tensor,
    w1_b: torch.Tensor,
    t2: torch.Tensor,
    w2_a: torch.Tensor,
    w2_b: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """The effective-conv form: Tucker(t1, w1_a, w1_b) ⊙ Tucker(t2, w2_a, w2_b) · scale."""
    return _tucker(t1, w1_a, w1_b) * _tucker(t2, w2_a, w2_b) * scale


class LoHaLayer(LycorisLayer):
    """A Linear / Conv1d / Conv2d layer with LoHa adapters."""

    adapter_layer_names = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")
    container_types = {}

    def create_adapter_parameters(self, adapter_name: str, r: int, config: object) -> None:
        out = self.out_features
        if self.uses_effective_conv(getattr(config, "use_effective_conv2d", False)):
            kernel = self.kernel_size if len(self.kernel_size) == 2 else (self.kernel_size[0], 1)
            for i in ("1", "2"):
                getattr(self, f"hada_t{i}")[adapter_name] = nn.Parameter(torch.empty(r, r, *kernel))
                getattr(self, f"hada_w{i}_a")[adapter_name] = nn.Parameter(torch.empty(r, out))
                getattr(self, f"hada_w{i}_b")[adapter_name] = nn.Parameter(torch.empty(r, self.in_per_group))
        else:
            flat_in = self.flat_in_features()
            for i in ("1", "2"):
                getattr(self, f"hada_w{i}_a")[adapter_name] = nn.Parameter(torch.empty(out, r))
                getattr(self, f"hada_w{i}_b")[adapter_name] = nn.Parameter(torch.empty(r, flat_in))
        self._initialise(adapter_name, no_op=bool(getattr(config, "init_weights", True)))

    def _initialise(self, adapter_name: str, no_op: bool) -> None:
        # Same order of random draws as Hugging Face PEFT, so a seeded init gives the same tensors.
        _kaiming(self.hada_w1_a[adapter_name])
        _kaiming(self.hada_w1_b[adapter_name])
        _kaiming(self.hada_w2_a[adapter_name])
        if no_op:
            nn.init.zeros_(self.hada_w2_b[adapter_name])  # one zero factor makes ΔW = 0
        else:
            _kaiming(self.hada_w2_b[adapter_name])
        if adapter_name in self.hada_t1:
            _kaiming(self.hada_t1[adapter_name])
            _kaiming(self.hada_t2[adapter_name])

    def delta_weight(self, adapter_name: str) -> torch.Tensor:
        scale = self.scaling[adapter_name]
        w1_a, w1_b = self.hada_w1_a[adapter_name], self.hada_w1_b[adapter_name]
        w2_a, w2_b = self.hada_w2_a[adapter_name], self.hada_w2_b[adapter_name]
        if adapter_name in self.hada_t1:
            return hadamard_product_cp(self.hada_t1[adapter_name], w1_a, w1_b, self.hada_t2[adapter_name], w2_a, w2_b, scale)
        return hadamard_product(w1_a, w1_b, w2_a, w2_b, scale)
