"""`FrodLinear`: FRoD on an `nn.Linear` or a transformers `Conv1D`.

Per adapter: trained `frod_lambda_l [in]` and `frod_lambda_s_values [nnz]`, the frozen `frod_U [out, in]`
(a non-persistent buffer, solved from the weight and the role's basis when the adapter is created),
and plain references to the tuner's per-role `V`, positions and size. The adapted weight is
`W' = U (S + diag(λ)) Vᵀ`. With one active adapter and no dropout at work the layer computes
`x V (S + diag λ)ᵀ Uᵀ + b` directly (as HF does); otherwise `base(x) + x W'ᵀ − x Wᵀ` per adapter.
Merging adds `W' − W₀` (`W₀`: the weight before the first merge, restored by the last unmerge).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import current_batch_plan
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.mixed_batch import run_per_group
from peft_core.tuners.weight_snapshot import restore_weight_before_merge, weight_before_merge
from peft_core.tuners.layer_containers import dropout_module, unsaved_buffers
from peft_core.tuners.linear_layer import LinearLikeLayer

from .bases import factor_weight


class FrodLinear(LinearLikeLayer):
    adapter_layer_names = ("frod_lambda_l", "frod_lambda_s_values")
    other_param_names = ("frod_U", "frod_dropout")
    container_types = {"frod_U": unsaved_buffers, "frod_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, fan_in_fan_out)
        self._role: dict[str, tuple[BufferDict, BufferDict, BufferDict]] = {}
        self._u_source: dict[str, tuple[int, int]] = {}  # the basis tensor each U was solved from
        self._weight_before_merge: torch.Tensor | None = None

    def _weight_out_in(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.T if self.fan_in_fan_out else weight

    def update_layer(self, adapter_name: str, role: tuple[BufferDict, BufferDict, BufferDict], config: Any) -> None:
        """`role`: the tuner's (V, positions, size) buffer dicts of this layer's role."""
        weight = self.get_base_layer().weight
        bases, positions, _ = role
        self._role[adapter_name] = role
        self.frod_dropout[adapter_name] = dropout_module(config.frod_dropout)
        u, scale = self._solve(adapter_name)
        values = torch.zeros(positions[adapter_name].shape[1], device=weight.device, dtype=weight.dtype)
        scale = scale.to(device=weight.device, dtype=weight.dtype)
        if not config.init_weights:
            with torch.no_grad():
                nn.init.normal_(values, std=0.1)
                scale.add_(torch.randn_like(scale) * 0.1)
        self.frod_lambda_s_values[adapter_name] = nn.Parameter(values)
        self.frod_lambda_l[adapter_name] = nn.Parameter(scale)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _solve(self, adapter_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Solve `W₀ = U diag(λ) Vᵀ` for the current basis; store U (returned with λ) and remember the basis.

        Run again whenever the basis tensor changes (loaded from a file, moved, cast), so U always
        matches the V in use: HF solves U only at creation, from the regenerated basis."""
        weight = self.get_base_layer().weight
        reference = weight if self._weight_before_merge is None else self._weight_before_merge.to(weight.device, weight.dtype)
        basis = self._role[adapter_name][0][adapter_name]
        u, scale = factor_weight(basis.to(device="cpu", dtype=_compute_dtype(weight.dtype)), self._weight_out_in(reference))
        self.frod_U[adapter_name] = u.to(device=weight.device, dtype=_compute_dtype(weight.dtype))
        self._u_source[adapter_name] = (id(basis), basis._version)
        return u, scale

    def _current_u(self, adapter_name: str) -> torch.Tensor:
        basis = self._role[adapter_name][0][adapter_name]
        if self._u_source.get(adapter_name) != (id(basis), basis._version):
            with torch.no_grad():
                self._solve(adapter_name)
        return self.frod_U[adapter_name]

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._role.pop(adapter_name, None)
        self._u_source.pop(adapter_name, None)

    def _tensors(self, adapter_name: str, device: torch.device, dtype: torch.dtype):
        """(U, V, sparse S, λ) on `device` in `dtype`."""
        bases, positions, sizes = self._role[adapter_name]
        like = dict(device=device, dtype=dtype)
        size = tuple(int(d) for d in sizes[adapter_name].tolist())
        values = self.frod_lambda_s_values[adapter_name].to(**like)
        sparse = torch.sparse_coo_tensor(positions[adapter_name].to(device=device, dtype=torch.long), values, size).coalesce()
        u = self._current_u(adapter_name)
        return u.to(**like), bases[adapter_name].to(**like), sparse, self.frod_lambda_l[adapter_name].to(**like)

    def adapted_weight(self, adapter_name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """W' = U (S + diag λ) Vᵀ, `[out, in]`."""
        u, v, sparse, scale = self._tensors(adapter_name, device, dtype)
        return u @ (sparse.to_dense() + torch.diag_embed(scale)) @ v.T

    # -- merging ----------------------------------------------------------------------------------------
    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """W' − W₀ in the base weight's layout (W₀: the weight before the first merge, or the current one)."""
        weight = self.get_base_layer().weight
        reference = weight.data if self._weight_before_merge is None else self._weight_before_merge.to(weight.device, weight.dtype)
        adapted = self.adapted_weight(adapter_name, weight.device, weight.dtype)
        return self._weight_out_in(adapted - self._weight_out_in(reference))

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.frod_lambda_l and not self.merged

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        weight = self.get_base_layer().weight
        weight_before_merge(self)  # kept from the first merge on, for the exact unmerge of the last one
        merged = weight.data + self.get_delta_weight(adapter_name).to(weight.dtype)
        if safe_merge:
            self._check_finite(merged, adapter_name)
        weight.data = merged

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        if not self.merged_adapters and restore_weight_before_merge(self):  # the last one: W₀ exactly
            return
        weight = self.get_base_layer().weight
        weight.data -= self.get_delta_weight(adapter_name).to(weight.dtype)

    # -- forward ----------------------------------------------------------------------------------------
    def _sparse_product(self, z: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """z Sᵀ for rows z."""
        if sparse._nnz() == 0:
            return torch.zeros_like(z)
        if z.dtype in (torch.float16, torch.bfloat16):
            return z @ sparse.to_dense().t()
        return torch.sparse.mm(sparse, z.t()).t()

    def _adapted_output(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        """dropout(x) W'ᵀ, without bias; in fp32 for a half-precision input (W' is rebuilt from
        factors whose rounding to 16 bits would be amplified by the non-orthogonal basis)."""
        compute = _compute_dtype(x.dtype)
        u, v, sparse, scale = self._tensors(adapter_name, x.device, compute)
        h = self.frod_dropout[adapter_name](x).to(compute)
        z = torch.matmul(h.reshape(-1, h.shape[-1]), v)
        out = F.linear(self._sparse_product(z, sparse) + z * scale, u)
        return out.reshape(*h.shape[:-1], out.shape[-1])

    def _compute(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        base = self.get_base_layer()
        bias = base.bias
        names = [n for n in names if n in self.frod_lambda_s_values]
        if not names:
            return self.base_layer(x, *args, **kwargs)
        dropout = self.frod_dropout[names[0]]
        if len(names) == 1 and (isinstance(dropout, nn.Identity) or not dropout.training):
            out = self._adapted_output(x, names[0])
            return out if bias is None else out + bias
        result = self.base_layer(x, *args, **kwargs)
        without_bias = result if bias is None else result - bias
        weight = None
        for name in names:
            dropout = self.frod_dropout[name]
            if isinstance(dropout, nn.Identity) or not dropout.training:
                reference = without_bias
            else:  # the dropped-out input through the base weight
                if weight is None:
                    weight = self._weight_out_in(base.weight).to(device=x.device, dtype=x.dtype)
                reference = F.linear(dropout(x), weight)
            result = result + self._adapted_output(x, name) - reference
        return result

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        dtype = x.dtype
        plan = current_batch_plan()
        if plan is None:
            return self._compute(x, self.active_adapters, *args, **kwargs).to(dtype)
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: a FRoD layer got {x.shape[0]} rows but adapter_names has {plan.batch_size} "
                f"entries; the adapted layer must see the batch dimension first."
            )
        run = lambda rows, names: self._compute(rows, names, *args, **kwargs).to(dtype)  # noqa: E731
        return run_per_group(plan, x, run, self.frod_lambda_s_values)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
