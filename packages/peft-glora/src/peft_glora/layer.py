"""`GloraLinear`: an `nn.Linear` whose weight and bias are generalised per adapter.

For each adapter the layer computes with `W' = W + W ⊙ A + B` and `b' = b + b ⊙ D + E + (W C)`
(the paths `A`..`E` are in `paths.py`). The update depends on `W`, so it is not a fixed delta:

- forward: `base(x) + Σ_adapters (linear(x, W'_a, b'_a)) − n · base(x)`, Hugging Face PEFT's order
  of operations (the adapted outputs are summed, then the base output is taken off n times);
- merge: every merged adapter is applied to the original `W`, `b` at once (`W + Σ(W ⊙ A + B)`), so
  the result does not depend on the merge order; merging more first unmerges what is merged;
- unmerge: the original weights are solved back from the merged ones,
  `W = (W' − ΣB) / (1 + ΣA)`, then `b` likewise (HF's rule; exact up to rounding).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer

from .paths import bias_path, coupling_path, weight_path

PATHS = ("glora_A", "glora_B", "glora_C", "glora_D", "glora_E")


class GloraLinear(BaseTunerLayer):
    adapter_layer_names = PATHS
    other_param_names = ("r",)
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        self.in_features, self.out_features = base.in_features, base.out_features
        for attr in PATHS:
            setattr(self, attr, nn.ModuleDict())
        self.r: dict[str, int] = {}

    def update_layer(self, adapter_name: str, r: int, config_A_B: str, config_C: str, config_D_E: str, init_weights: bool) -> None:
        out_f, in_f = self.out_features, self.in_features
        has_bias = self.get_base_layer().bias is not None
        self.r[adapter_name] = r
        # created in Hugging Face PEFT's order (A, B, C, D, E), so seeded random starts agree
        self.glora_A[adapter_name] = weight_path(config_A_B, out_f, in_f, r, init_weights)
        self.glora_B[adapter_name] = weight_path(config_A_B, out_f, in_f, r, init_weights)
        self.glora_C[adapter_name] = coupling_path(config_C, in_f, r, init_weights, has_bias)
        self.glora_D[adapter_name] = bias_path(config_D_E, out_f, init_weights, has_bias)
        self.glora_E[adapter_name] = bias_path(config_D_E, out_f, init_weights, has_bias)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    # -- the adapted weight and bias ---------------------------------------------------------
    def _paths(self, name: str, like: torch.Tensor) -> list[torch.Tensor]:
        """`A`..`E` of adapter `name` on `like`'s device and in its dtype."""
        return [self._container(attr)[name]().to(device=like.device, dtype=like.dtype) for attr in PATHS]

    def _adapted_linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        base = self.get_base_layer()
        weight, bias = base.weight, base.bias
        a, b, c, d, e = self._paths(name, weight)
        adapted_weight = weight + weight * a + b
        if bias is None:
            return F.linear(x, adapted_weight)
        adapted_bias = bias + bias * d + e + torch.matmul(weight, c).squeeze(-1)
        return F.linear(x, adapted_weight, bias=adapted_bias)

    def adapted_forward(self, x: torch.Tensor, adapter_names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        base_out = self.base_layer(x, *args, **kwargs)
        names = list(adapter_names)
        if not names:
            return base_out
        result = base_out
        for name in names:
            result = result + self._adapted_linear(x, name)
        return (result - len(names) * base_out).to(base_out.dtype)

    def batch_forward(self, plan: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: a GLoRA layer got {x.shape[0]} rows but adapter_names has {plan.batch_size} "
                f"entries; the adapted layer must see the batch dimension first."
            )
        result = self.base_layer(x, *args, **kwargs)
        base_out = result.clone()
        for name in plan.adapter_groups():
            if name not in self.glora_A:
                continue
            rows = plan.rows(name, x.device)
            result[rows] = result[rows] + (self._adapted_linear(x[rows], name) - base_out[rows])
        return result

    # -- merging -----------------------------------------------------------------------------
    def merge(self, safe_merge: bool = False, adapter_names: Sequence[str] | None = None) -> None:
        """Merge `adapter_names` (default: the active ones) together with any already merged, all
        applied to the original weights."""
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        new = [n for n in names if n in self.glora_A and n not in self.merged_adapters]
        if not new:
            return
        previously = list(self.merged_adapters)
        if previously:
            self.unmerge()
        everything = previously + new
        base = self.get_base_layer()
        w0 = base.weight.data
        b0 = base.bias.data if base.bias is not None else None
        with torch.no_grad():
            weight = w0.clone()
            bias = b0.clone() if b0 is not None else None
            for name in everything:
                a, b, c, d, e = self._paths(name, w0)
                weight += w0 * a + b
                if bias is not None:
                    bias += b0 * d + e + torch.matmul(w0, c).squeeze(-1)
            if safe_merge:
                self._check_finite(weight, ", ".join(everything))
                if bias is not None:
                    self._check_finite(bias, ", ".join(everything))
        base.weight.data = weight
        if bias is not None:
            base.bias.data = bias
        self.merged_adapters.extend(everything)

    def unmerge(self) -> None:
        """Solve the original weights back from the merged ones (Hugging Face PEFT's rule)."""
        merged = [n for n in self.merged_adapters if n in self.glora_A]
        self.merged_adapters.clear()
        if not merged:
            return
        base = self.get_base_layer()
        weight = base.weight.data
        with torch.no_grad():
            sum_a = torch.zeros_like(weight)
            sum_b = torch.zeros_like(weight)
            for name in merged:
                a, b, _, _, _ = self._paths(name, weight)
                sum_a += a
                sum_b += b
            w0 = (weight - sum_b) / (1.0 + sum_a)
            if base.bias is not None:
                bias = base.bias.data
                sum_d, sum_e, sum_wc = (torch.zeros_like(bias) for _ in range(3))
                for name in merged:
                    _, _, c, d, e = self._paths(name, weight)
                    sum_d += d
                    sum_e += e
                    sum_wc += torch.matmul(w0, c).squeeze(-1)
                base.bias.data = (bias - sum_e - sum_wc) / (1.0 + sum_d)
        base.weight.data = w0
