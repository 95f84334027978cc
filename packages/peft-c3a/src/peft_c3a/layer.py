"""`C3ALinear`: an `nn.Linear` plus a block-circulant update per adapter.

`y = base(x) + (x C) / in_features`, where `C` is the block-circulant matrix of the adapter's
`c3a_kernel [out/b, in/b, b]` (see `circulant`). Merging adds the same update to the weight.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from peft_core import BaseTunerLayer, ConfigError
from peft_core.tuners.mixed_batch import add_adapter_deltas

from .circulant import block_circulant_matrix, block_circulant_product


class C3ALinear(BaseTunerLayer):
    adapter_layer_names = ("c3a_kernel",)
    other_param_names = ("block_size",)
    container_types = {}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, block_size: int, init_weights: bool | str) -> None:
        if self.in_features % block_size or self.out_features % block_size:
            raise ConfigError(
                f"C3A block_size={block_size} must divide both the input ({self.in_features}) and output "
                f"({self.out_features}) size of the layer; use a common divisor (e.g. their gcd) or block_size_pattern."
            )
        self.block_size[adapter_name] = block_size
        weight = self.get_base_layer().weight
        kernel = torch.zeros(
            self.out_features // block_size,
            self.in_features // block_size,
            block_size,
            dtype=torch.float32,  # FFTs need fp32 (see circulant)
            device=weight.device,
        )
        self._init_kernel(kernel, init_weights)
        self.c3a_kernel[adapter_name] = nn.Parameter(kernel)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    @torch.no_grad()
    def _init_kernel(self, kernel: torch.Tensor, init_weights: bool | str) -> None:
        if kernel.is_meta or init_weights is True:
            return  # zeros: the adapter starts as a no-op
        if init_weights == "gaussian":
            nn.init.normal_(kernel)
        elif init_weights in ("xavier_uniform", False):
            bound = math.sqrt(3.0) * math.sqrt(2.0 / float(self.in_features + self.out_features))
            nn.init.uniform_(kernel, -bound, bound)
        elif init_weights == "kaiming_uniform":
            bound = math.sqrt(1.0 / float(self.in_features))
            nn.init.uniform_(kernel, -bound, bound)
        else:
            raise ConfigError(f"Unknown C3A init_weights {init_weights!r}.")

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        weight = self.get_base_layer().weight
        kernel = self.c3a_kernel[adapter_name].to(torch.float32)
        return block_circulant_matrix(kernel).to(weight.dtype) / weight.size(-1)

    def _delta(self, x: torch.Tensor, name: str) -> torch.Tensor:
        kernel = self.c3a_kernel[name].to(torch.float32)
        x = x.to(torch.float32)
        return block_circulant_product(x, kernel) / x.size(-1)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)

        def delta(rows: torch.Tensor, name: str) -> torch.Tensor:
            return self._delta(rows, name).to(result.dtype)

        # Every adapter sees the layer's input (HF 0.21.2 feeds the second of several active
        # adapters the first one's output instead; with one active adapter both agree).
        return add_adapter_deltas(x, result, self.active_adapters, self.c3a_kernel, delta, "a C3A layer")
