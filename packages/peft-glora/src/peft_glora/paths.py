"""The five kinds of GLoRA "path": how one of the tensors `A`..`E` is parameterised.

Each is a small module whose call returns the tensor (or a scalar that broadcasts). Parameter and
buffer names (`Xd`, `Xu`, `X`, `zeros`) are Hugging Face PEFT's, since they are the saved keys
(`<layer>.glora_A.Xd` ...). Initialisation draws in HF's order, so a seeded random start is HF's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_KAIMING_A = math.sqrt(5)


class LowRankPath(nn.Module):
    """`Xd @ Xu`, `Xd [rows, r]`, `Xu [r, cols]`; `Xd` starts at zero for a no-op start."""

    def __init__(self, rows: int, cols: int, r: int, init_weights: bool) -> None:
        super().__init__()
        self.Xd = nn.Parameter(torch.zeros(rows, r))
        self.Xu = nn.Parameter(torch.zeros(r, cols))
        nn.init.kaiming_uniform_(self.Xu, a=_KAIMING_A)
        if init_weights:
            nn.init.zeros_(self.Xd)
        else:
            nn.init.kaiming_uniform_(self.Xd, a=_KAIMING_A)

    def forward(self) -> torch.Tensor:
        return self.Xd @ self.Xu


class VectorPath(nn.Module):
    """One value per row: a column `[n, 1]` (broadcast over a matrix) or a vector `[n]` (a bias)."""

    def __init__(self, size: int, column: bool, init_weights: bool) -> None:
        super().__init__()
        self.X = nn.Parameter(torch.zeros((size, 1) if column else (size,)))
        if not init_weights:
            # a vector is drawn as the row [1, n] (fan-in n), a column as [n, 1] (fan-in 1), as in HF
            nn.init.kaiming_uniform_(self.X if column else self.X.data.unsqueeze(0), a=_KAIMING_A)

    def forward(self) -> torch.Tensor:
        return self.X


class ScalarPath(nn.Module):
    """One trained scalar."""

    def __init__(self, init_weights: bool) -> None:
        super().__init__()
        self.X = nn.Parameter(torch.zeros(1))
        if not init_weights:
            nn.init.normal_(self.X, mean=0.0, std=0.02)

    def forward(self) -> torch.Tensor:
        return self.X[0]


class ZeroPath(nn.Module):
    """A switched-off path: zeros of the path's shape, a saved buffer (Hugging Face PEFT saves it too)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("zeros", torch.zeros(shape))

    def forward(self) -> torch.Tensor:
        return self.zeros


def weight_path(kind: str, out_features: int, in_features: int, r: int, init_weights: bool) -> nn.Module:
    """A path for `A` or `B` (shaped like the weight `[out, in]`)."""
    if kind == "lora":
        return LowRankPath(out_features, in_features, r, init_weights)
    if kind == "vector":
        return VectorPath(out_features, column=True, init_weights=init_weights)
    if kind == "constant":
        return ScalarPath(init_weights)
    return ZeroPath((out_features, in_features))


def coupling_path(kind: str, in_features: int, r: int, init_weights: bool, has_bias: bool) -> nn.Module:
    """A path for `C` (`[in, 1]`: the bias gains `W C`); zero on layers without a bias."""
    if has_bias and kind == "lora":
        return LowRankPath(in_features, 1, r, init_weights)
    if has_bias and kind == "vector":
        return VectorPath(in_features, column=True, init_weights=init_weights)
    return ZeroPath((in_features, 1))


def bias_path(kind: str, out_features: int, init_weights: bool, has_bias: bool) -> nn.Module:
    """A path for `D` or `E` (shaped like the bias `[out]`); zero on layers without a bias."""
    if has_bias and kind == "vector":
        return VectorPath(out_features, column=False, init_weights=init_weights)
    if has_bias and kind == "constant":
        return ScalarPath(init_weights)
    return ZeroPath((out_features,))
