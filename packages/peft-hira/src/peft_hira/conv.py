"""`HiraConv`: HiRA on `nn.Conv1d` / `nn.Conv2d` / `nn.Conv3d` (groups = 1).

Per adapter `hira_A [r, in, *kernel]` and `hira_B [out, r, 1, ...]`; `ΔH[o, i, k] = Σ_r B[o, r] A[r, i, k]`
(computed as Hugging Face PEFT does: a matrix product for 1x1 Conv2d, else a convolution of the
factors), and the update is the convolution of the input with `W ⊙ ΔH` (no bias), run through the
base layer's own `_conv_forward` so its padding mode applies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layer import HiraLayer, init_low_rank

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class HiraConv(HiraLayer):
    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        self.in_features, self.out_features = base.in_channels, base.out_channels
        self._spatial = base.weight.dim() - 2

    def update_layer(self, adapter_name: str, r: int, dropout: float, init_weights: object) -> None:
        base = self.get_base_layer()
        self._add_common(adapter_name, r, dropout)
        a = torch.randn((r, base.in_channels, *base.kernel_size))
        b = torch.randn((base.out_channels, r, *((1,) * self._spatial)))
        init_low_rank(a, b, bool(init_weights), r)  # HF: 'gaussian' initialises convs like True
        self.hira_A[adapter_name] = nn.Parameter(a)
        self.hira_B[adapter_name] = nn.Parameter(b)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _delta_from(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self._spatial == 2 and tuple(a.shape[2:]) == (1, 1):
            return (b[:, :, 0, 0] @ a[:, :, 0, 0])[:, :, None, None]
        return _CONV_FN[self._spatial](a.transpose(0, 1), b).transpose(0, 1)

    def _update_output(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        base = self.get_base_layer()
        x = x.to(self.hira_A[adapter_name].dtype)
        modulated = base.weight * self.get_delta_weight(adapter_name)
        return base._conv_forward(self.hira_dropout[adapter_name](x), modulated, None)
