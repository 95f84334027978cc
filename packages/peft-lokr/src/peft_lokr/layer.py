"""`LoKrLayer`: the Kronecker product of two small factors, on Linear, Conv1d and Conv2d.

Parameters per adapter (parameter-backed, so saved keys have no `.weight`); which ones exist
follows Hugging Face PEFT 0.21.2's rules exactly (see the package README):

- left factor: `lokr_w1 [oL, iM]`, or `lokr_w1_a [oL, r]` and `lokr_w1_b [r, iM]`;
- right factor: `lokr_w2` (`[oK, iN]` or `[oK, iN, *kernel]`), or `lokr_w2_a [oK, r]` and
  `lokr_w2_b [r, iN * prod(kernel)]`, or (effective conv) `lokr_t2 [r, r, kh, kw]`,
  `lokr_w2_a [r, oK]`, `lokr_w2_b [r, iN]`.

ΔW = kron(w1, w2) * alpha / r, reshaped to the base weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from peft_core.tuners.lycoris import LycorisLayer

from .factorization import factorization


def _kaiming(param: torch.Tensor) -> None:
    nn.init.kaiming_uniform_(param, a=math.sqrt(5))


def kronecker_delta(w1: torch.Tensor, w2: torch.Tensor, scale: float) -> torch.Tensor:
    """kron(w1, w2) * scale; a 2-D `w1` gets two trailing unit dimensions when `w2` is a 4-D kernel."""
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    # Standard strides: an einsum result can be "contiguous" with an odd stride on a size-1
    # dimension, which torch.kron rejects (HF 0.21.2 crashes there: Conv1d, effective conv, r=1).
    w2 = w2.contiguous().reshape(-1).view(w2.shape)
    return torch.kron(w1, w2) * scale


def tucker_kernel(core: torch.Tensor, w_a: torch.Tensor, w_b: torch.Tensor) -> torch.Tensor:
    """core [r, r, kh, kw], w_a [r, oK], w_b [r, iN] -> [oK, iN, kh, kw]."""
    return torch.einsum("i j k l, i p, j r -> p r k l", core, w_a, w_b)


class LoKrLayer(LycorisLayer):
    """A Linear / Conv1d / Conv2d layer with LoKr adapters."""

    adapter_layer_names = ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")
    container_types = {}
    # LoKr's rank-dropout mask is float32 whatever the delta's dtype (Hugging Face PEFT's rule).
    rank_dropout_mask_in_weight_dtype = False

    def factor_shapes(self, decompose_factor: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """((oL, oK), (iM, iN)): the output and input dimensions split for the Kronecker product."""
        return factorization(self.out_features, decompose_factor), factorization(self.in_per_group, decompose_factor)

    def create_adapter_parameters(self, adapter_name: str, r: int, config: object) -> None:
        (o_l, o_k), (i_m, i_n) = self.factor_shapes(getattr(config, "decompose_factor", -1))
        kernel = self.kernel_size
        full_w1 = not (getattr(config, "decompose_both", False) and r < max(o_l, i_m) / 2)
        full_w2 = r >= max(o_k, i_n) / 2
        effective = self.uses_effective_conv(getattr(config, "use_effective_conv2d", False))

        if full_w1:
            self.lokr_w1[adapter_name] = nn.Parameter(torch.empty(o_l, i_m))
        else:
            self.lokr_w1_a[adapter_name] = nn.Parameter(torch.empty(o_l, r))
            self.lokr_w1_b[adapter_name] = nn.Parameter(torch.empty(r, i_m))
        if full_w2:
            self.lokr_w2[adapter_name] = nn.Parameter(torch.empty(o_k, i_n, *kernel))
        elif effective:
            core_kernel = kernel if len(kernel) == 2 else (kernel[0], 1)
            self.lokr_t2[adapter_name] = nn.Parameter(torch.empty(r, r, *core_kernel))
            self.lokr_w2_a[adapter_name] = nn.Parameter(torch.empty(r, o_k))
            self.lokr_w2_b[adapter_name] = nn.Parameter(torch.empty(r, i_n))
        else:
            self.lokr_w2_a[adapter_name] = nn.Parameter(torch.empty(o_k, r))
            self.lokr_w2_b[adapter_name] = nn.Parameter(torch.empty(r, i_n * math.prod(kernel)))
        self._initialise(adapter_name, getattr(config, "init_weights", True))

    def _initialise(self, adapter_name: str, init_weights: bool | str) -> None:
        """True: left factor's first part = 0; "lycoris": right factor's last part = 0; False: all random.

        Same order of random draws as Hugging Face PEFT, so a seeded init gives the same tensors.
        """
        mode = "random" if not init_weights else ("lycoris" if init_weights == "lycoris" else "default")
        if adapter_name in self.lokr_w1:
            (nn.init.zeros_ if mode == "default" else _kaiming)(self.lokr_w1[adapter_name])
        else:
            (nn.init.zeros_ if mode == "default" else _kaiming)(self.lokr_w1_a[adapter_name])
            _kaiming(self.lokr_w1_b[adapter_name])
        if adapter_name in self.lokr_w2:
            (nn.init.zeros_ if mode == "lycoris" else _kaiming)(self.lokr_w2[adapter_name])
        else:
            _kaiming(self.lokr_w2_a[adapter_name])
            (nn.init.zeros_ if mode == "lycoris" else _kaiming)(self.lokr_w2_b[adapter_name])
        if adapter_name in self.lokr_t2:
            _kaiming(self.lokr_t2[adapter_name])

    def left_factor(self, adapter_name: str) -> torch.Tensor:
        if adapter_name in self.lokr_w1:
            return self.lokr_w1[adapter_name]
        return self.lokr_w1_a[adapter_name] @ self.lokr_w1_b[adapter_name]

    def right_factor(self, adapter_name: str) -> torch.Tensor:
        if adapter_name in self.lokr_w2:
            return self.lokr_w2[adapter_name]
        if adapter_name in self.lokr_t2:
            return tucker_kernel(self.lokr_t2[adapter_name], self.lokr_w2_a[adapter_name], self.lokr_w2_b[adapter_name])
        return self.lokr_w2_a[adapter_name] @ self.lokr_w2_b[adapter_name]

    def delta_weight(self, adapter_name: str) -> torch.Tensor:
        return kronecker_delta(self.left_factor(adapter_name), self.right_factor(adapter_name), self.scaling[adapter_name])
