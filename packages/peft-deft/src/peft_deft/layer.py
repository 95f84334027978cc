"""`DeftLinear`: an `nn.Linear` (or GPT-2 `Conv1D`) whose weight has a learned subspace replaced.

Per adapter: `deft_P [out, r]`, and `deft_R [r, in]` unless PaRa. With `(Q, right)` from P
(`"relu"`: `(P, relu(P))`, `"qr"`: `(qr(P), qr(P))`) the adapted weight is
`W' = W − Q rightᵀ W + Q (s R)`, i.e. `ΔW = Q (s R − rightᵀ W)`. The forward applies this to the
activations, in float32 and in Hugging Face PEFT's order of operations:

    y = base(x) − ((base(x) − b) right) Qᵀ + (dropout(x) (s R)ᵀ) Qᵀ

Merging needs `rightᵀ W` of the weight *before* the merge; it is cached per merged adapter (a
non-saved `[r, in]` buffer), so unmerging is exact and several adapters merge independently.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import current_batch_plan
from peft_core.tuners.layer_containers import dropout_module, unsaved_buffers
from peft_core.tuners.linear_layer import LinearLikeLayer

COMPUTE_DTYPE = torch.float32  # QR and the projections are unreliable in half precision


class DeftLinear(LinearLikeLayer):
    adapter_layer_names = ("deft_P", "deft_R")
    other_param_names = ("deft_r", "deft_decomposition", "deft_init_scale", "deft_para", "deft_scaling", "deft_dropout", "deft_merge_factor")
    container_types = {"deft_dropout": nn.ModuleDict, "deft_merge_factor": unsaved_buffers}
    supports_mixed_batch = True

    def update_layer(
        self,
        adapter_name: str,
        r: int,
        decomposition_method: str,
        alpha: int | None,
        para: bool,
        dropout: float,
        init_weights: bool,
        init_scale: float,
    ) -> None:
        r = min(r, self.out_features)  # P_proj has rank <= out (and qr returns at most `out` columns)
        self.deft_r[adapter_name] = r
        self.deft_decomposition[adapter_name] = decomposition_method
        self.deft_init_scale[adapter_name] = init_scale
        self.deft_para[adapter_name] = para
        self.deft_scaling[adapter_name] = alpha / r if alpha else 1.0
        self.deft_dropout[adapter_name] = dropout_module(dropout)
        self.deft_P[adapter_name] = nn.Parameter(torch.empty(self.out_features, r))
        if not para:
            self.deft_R[adapter_name] = nn.Parameter(torch.empty(r, self.in_features))
        self._init_weights(adapter_name, init_weights)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _init_weights(self, name: str, init_weights: bool) -> None:
        """P ~ N(0, 0.02); then R (drawn in Hugging Face PEFT's order, so seeded starts agree)."""
        with torch.no_grad():
            p = self.deft_P[name]
            p.normal_(0.0, 0.02)
            if self.deft_para[name]:
                return  # PaRa has no R: a fresh adapter already removes a subspace
            r_param = self.deft_R[name]
            weight = self.get_base_layer().weight
            if not init_weights:
                r_param.normal_(0.0, 0.02 * self.deft_init_scale[name])
            elif not (p.is_meta or weight.is_meta or r_param.is_meta):  # meta: the real values are loaded later
                _, right = self._project(p.to(weight.device), name)
                start = right.transpose(0, 1) @ self._logical_weight(weight) / self.deft_scaling[name]
                r_param.copy_(start.to(dtype=r_param.dtype, device=r_param.device))

    # -- the math ----------------------------------------------------------------------------
    def _logical_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """The base weight as `[out, in]` in float32 (`Conv1D` stores it transposed)."""
        weight = weight.detach().to(COMPUTE_DTYPE)
        return weight.T if self.fan_in_fan_out else weight

    def _project(self, p: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """`(Q, right)` in float32, with `P_proj = Q rightᵀ`."""
        p = p.to(COMPUTE_DTYPE)
        if self.deft_decomposition[name] == "qr":
            q, _ = torch.linalg.qr(p)
            return q, q
        return p, torch.relu(p)

    def _merge_factor(self, name: str) -> torch.Tensor:
        """`rightᵀ W` (`[r, in]`, float32): the only part of the change that depends on the base weight."""
        _, right = self._project(self.deft_P[name], name)
        return right.transpose(0, 1) @ self._logical_weight(self.get_base_layer().weight)

    def _delta_from_factor(self, name: str, factor: torch.Tensor) -> torch.Tensor:
        q, _ = self._project(self.deft_P[name], name)
        if self.deft_para[name]:
            delta = -(q @ factor)
        else:
            delta = q @ (self.deft_R[name].to(COMPUTE_DTYPE) * self.deft_scaling[name] - factor)
        delta = delta.T if self.fan_in_fan_out else delta
        return delta.to(self.get_base_layer().weight.dtype)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """`ΔW = Q (s R − rightᵀ W)` in the base weight's layout and dtype."""
        return self._delta_from_factor(adapter_name, self._merge_factor(adapter_name))

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return True

    def merge(self, safe_merge: bool = False, adapter_names: Sequence[str] | None = None) -> None:
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        names = [n for n in names if n in self.deft_P and n not in self.merged_adapters]
        # every factor is taken from the weight before this merge: adapters merge independently
        factors = {name: self._merge_factor(name).detach() for name in names}
        base = self.get_base_layer()
        for name, factor in factors.items():
            with torch.no_grad():
                delta = self._delta_from_factor(name, factor)
                if safe_merge:
                    merged = base.weight.data.clone() + delta
                    self._check_finite(merged, name)
                    base.weight.data = merged
                else:
                    base.weight.data = base.weight.data + delta
            self.deft_merge_factor[name] = factor
            self.merged_adapters.append(name)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        with torch.no_grad():
            if adapter_name in self.deft_merge_factor:
                factor = self.deft_merge_factor[adapter_name].to(COMPUTE_DTYPE)
                del self.deft_merge_factor[adapter_name]
                delta = self._delta_from_factor(adapter_name, factor)
            else:  # exact only while the base weight is what it was at the merge
                delta = self.get_delta_weight(adapter_name)
            base.weight.data = base.weight.data - delta

    # -- forward -----------------------------------------------------------------------------
    def _adapted(self, result: torch.Tensor, x: torch.Tensor, base_product: torch.Tensor, name: str) -> torch.Tensor:
        """`result` (float32) with adapter `name` applied: the removed subspace taken off, then the
        injection added (Hugging Face PEFT's order of operations)."""
        q, right = self._project(self.deft_P[name], name)
        result = result - (base_product @ right) @ q.transpose(0, 1)
        if not self.deft_para[name]:
            r_scaled = self.deft_R[name].to(COMPUTE_DTYPE) * self.deft_scaling[name]
            result = result + F.linear(self.deft_dropout[name](x), r_scaled) @ q.transpose(0, 1)
        return result

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        names = [n for n in self.active_adapters if n in self.deft_P]
        if plan is None and not names:
            return self.base_layer(x, *args, **kwargs)
        previous_dtype = x.dtype
        bias = self.get_base_layer().bias
        result = self.base_layer(x, *args, **kwargs).to(COMPUTE_DTYPE)
        base_product = result if bias is None else result - bias.to(COMPUTE_DTYPE)  # x Wᵀ without the bias
        x = x.to(COMPUTE_DTYPE)
        if plan is None:
            for name in names:
                result = self._adapted(result, x, base_product, name)
            return result.to(previous_dtype)
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: a DEFT layer got {x.shape[0]} rows but adapter_names has {plan.batch_size} "
                f"entries; the adapted layer must see the batch dimension first."
            )
        result = result.clone()
        for name in plan.adapter_groups():
            if name in self.deft_P:
                rows = plan.rows(name, x.device)
                result[rows] = self._adapted(result[rows], x[rows], base_product[rows], name)
        return result.to(previous_dtype)
