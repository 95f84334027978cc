"""HRA adapter layers for `nn.Linear` and `nn.Conv2d`: the layer runs with the weight `W @ H`.

Several active adapters chain: `W @ H_1 @ H_2 …` (merging them one after the other gives the same).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.weight_transform import conv_filter_features, flat_weight, set_flat_weight

from .config import HRAConfig
from .reflections import hra_matrix


class HRALayer(BaseTunerLayer):
    """Shared HRA logic; subclasses define the reflected dimension and how the base layer runs."""

    adapter_layer_names = ("hra_u",)
    other_param_names = ("hra_r", "hra_apply_GS")
    container_types = {}
    supports_mixed_batch = True

    @property
    def reflected_features(self) -> int:
        raise NotImplementedError

    def _run_with_weight(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- adapters ---------------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, config: HRAConfig) -> None:  # type: ignore[override]
        r = config.r
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        n = self.reflected_features
        if config.init_weights and r % 2 == 0:
            # Pairs of identical vectors: each pair of reflections cancels, so H = I.
            half = torch.zeros(n, r // 2)
            nn.init.kaiming_uniform_(half, a=math.sqrt(5))
            u = torch.repeat_interleave(half, 2, dim=1)
        else:
            if config.init_weights:
                warnings.warn(
                    f"HRA r={r} is odd: the symmetric (identity) initialisation needs an even r, so the adapter starts "
                    f"from random reflections and changes the model's outputs.",
                    UserWarning,
                    stacklevel=3,
                )
            u = torch.empty(n, r)
            nn.init.kaiming_uniform_(u, a=math.sqrt(5))
        self.hra_u[adapter_name] = nn.Parameter(u)
        self.hra_r[adapter_name] = r
        self.hra_apply_GS[adapter_name] = config.apply_GS
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def get_delta_weight(self, adapter_name: str, reverse: bool = False) -> torch.Tensor:
        """The `[n, n]` orthogonal matrix `H` of `adapter_name` (the weight becomes `W @ H`), or its inverse."""
        return hra_matrix(self.hra_u[adapter_name], self.hra_apply_GS[adapter_name], reverse=reverse)

    # -- merging ----------------------------------------------------------------------------------
    def _apply_to_weight(self, h: torch.Tensor, safe_merge: bool = False, adapter_name: str = "") -> None:
        base = self.get_base_layer()
        new = torch.mm(flat_weight(base).to(h.dtype), h)
        if safe_merge:
            self._check_finite(new, adapter_name)
        set_flat_weight(base, new)

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        self._apply_to_weight(self.get_delta_weight(adapter_name), safe_merge, adapter_name)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        self._apply_to_weight(self.get_delta_weight(adapter_name, reverse=True))

    # -- forward (BaseTunerLayer.forward handles disabling, merges and mixed batches) --------------
    def adapted_weight(self, names: Sequence[str], device: torch.device) -> torch.Tensor:
        """`W @ H_1 @ … @ H_k` for the adapters `names`, flattened to `[out, n]`."""
        product = torch.eye(self.reflected_features, device=device)
        for name in names:
            h = self.get_delta_weight(name)
            product = torch.mm(product.to(h.dtype), h)
        flat = flat_weight(self.get_base_layer())
        if flat.is_floating_point() and flat.dtype != product.dtype:
            flat = flat.to(product.dtype)
        return torch.mm(flat, product)

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        if not names:
            return self.base_layer(x, *args, **kwargs)
        previous_dtype = x.dtype
        weight = self.adapted_weight(names, x.device)
        if x.is_floating_point() and x.dtype != weight.dtype:
            x = x.to(weight.dtype)
        return self._run_with_weight(x, weight).to(previous_dtype)

    def __repr__(self) -> str:
        return "hra." + super().__repr__()


class HRALinear(HRALayer):
    """HRA on an `nn.Linear`: `y = x (W H)ᵀ + b`."""

    features_from_base = True  # in_features / out_features: the wrapped layer's

    @property
    def reflected_features(self) -> int:
        return self.in_features

    def _run_with_weight(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        bias = self.get_base_layer().bias
        if bias is not None and bias.dtype != weight.dtype:
            bias = bias.to(weight.dtype)
        return F.linear(x, weight, bias)


class HRAConv2d(HRALayer):
    """HRA on an `nn.Conv2d` (groups=1): the filter flattened to `[out, in_channels * kh * kw]` becomes `W @ H`."""

    features_from_base = True  # in_features / out_features: the wrapped layer's

    @property
    def reflected_features(self) -> int:
        return conv_filter_features(self.get_base_layer(), "HRA", "reflections")

    def _run_with_weight(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        base = self.get_base_layer()
        bias = base.bias
        if bias is not None and bias.dtype != weight.dtype:
            bias = bias.to(weight.dtype)
        return base._conv_forward(x, weight.reshape(base.weight.shape), bias)
