"""TinyLoRA layers: a frozen truncated SVD of the weight and a trained vector mixing random r×r tensors.

Per adapter a layer holds `tinylora_A [r, in]` and `tinylora_B [out, r]` (the SVD factors of its
weight, `√S` on each side; saved buffers), `tinylora_P [u, r, r]` (fixed normal tensors with std
`1/√r`, drawn from `projection_seed + layer index`; saved when `save_projection`) and the key of its
trained vector `v` in the tuner's `tinylora_v` (shared by a group of layers). `R = Σ_i v_i P_i`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import AdapterTensor, BaseTunerLayer
from peft_core.tuners.mixed_batch import add_adapter_deltas
from peft_core.tuners.layer_containers import dropout_module, saved_buffers


def truncated_svd(weight: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A = √S Vh [r', in], B = U √S [out, r']) of a `[out, in]` weight, r' = min(r, out, in); fp32 SVD."""
    dtype = weight.dtype
    u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)
    rank = min(r, *weight.shape)
    u_r, s_r, vh_r = u[:, :rank].to(dtype), s[:rank].to(dtype), vh[:rank, :].to(dtype)
    root = torch.sqrt(s_r)
    return (root.unsqueeze(1) * vh_r).contiguous(), (u_r * root.unsqueeze(0)).contiguous()


def projection(u: int, r: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.normal(mean=0.0, std=1.0 / (r**0.5), size=(u, r, r), generator=generator)


class TinyLoraLayer(BaseTunerLayer):
    adapter_layer_names = ("tinylora_A", "tinylora_B", "tinylora_P")
    other_param_names = ("tinylora_r", "tinylora_dropout", "tinylora_v_key")
    container_types = {
        "tinylora_A": saved_buffers,
        "tinylora_B": saved_buffers,
        "tinylora_P": saved_buffers,
        "tinylora_dropout": nn.ModuleDict,
    }
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, vectors: nn.ModuleDict, layer_index: int) -> None:
        super().__init__(base_layer)
        self.layer_index = layer_index  # the seed offset of P, fixed by the layer's first adapter (as in HF)
        object.__setattr__(self, "tinylora_v", vectors)  # the tuner's vectors: a reference, not a submodule

    def _weight_out_in(self) -> torch.Tensor:
        raise NotImplementedError

    def update_layer(self, adapter_name: str, v_key: str, config: Any) -> None:
        self.tinylora_dropout[adapter_name] = dropout_module(config.tinylora_dropout)
        self.tinylora_v_key[adapter_name] = v_key
        with torch.device("cpu"):  # frozen tensors are computed for real even while adapters are made on meta
            a, b = truncated_svd(self._weight_out_in().detach(), config.r)
        self.tinylora_r[adapter_name] = a.shape[0]
        self.tinylora_A[adapter_name] = a
        self.tinylora_B[adapter_name] = b
        self.tinylora_P.set(
            adapter_name, projection(config.u, a.shape[0], config.projection_seed + self.layer_index), config.save_projection
        )
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """P only when it is saved (`save_projection`)."""
        keep = self.tinylora_P.is_persistent(adapter_name)
        return [t for t in super().adapter_tensors(adapter_name) if keep or t.saved_key != "tinylora_P"]

    def _vector(self, adapter_name: str) -> torch.Tensor:
        return self.tinylora_v[adapter_name][self.tinylora_v_key[adapter_name]]

    def core(self, adapter_name: str) -> torch.Tensor:
        """R = Σ_i v_i P_i, in v's dtype."""
        v = self._vector(adapter_name)
        return torch.einsum("i,ijk->jk", v, self.tinylora_P[adapter_name].to(device=v.device, dtype=v.dtype))

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.tinylora_A

    def _product(self, adapter_name: str) -> torch.Tensor:
        """B R A in A's dtype (fp32 on the CPU for half precision, as HF)."""
        a = self.tinylora_A[adapter_name]
        dtype = a.dtype
        b = self.tinylora_B[adapter_name].to(device=a.device, dtype=dtype)
        r = self.core(adapter_name).to(device=a.device, dtype=dtype)
        if a.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
            return (b.float() @ r.float() @ a.float()).to(dtype)
        return b @ r @ a

    def _forward(self, x: torch.Tensor, delta: Callable, *args: Any, **kwargs: Any) -> torch.Tensor:
        """`base(x)` plus `delta(x, name, like)` of each active adapter (or of each row's adapter)."""
        result = self.base_layer(x, *args, **kwargs)
        like = lambda rows, name: delta(rows, name, result)  # noqa: E731
        return add_adapter_deltas(x, result, self.active_adapters, self.tinylora_A, like, "a TinyLoRA layer")


class TinyLoraLinear(TinyLoraLayer):
    """TinyLoRA on `nn.Linear` or transformers' `Conv1D` (`fan_in_fan_out`)."""

    def __init__(self, base_layer: nn.Module, vectors: nn.ModuleDict, layer_index: int, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, vectors, layer_index)
        self.fan_in_fan_out = fan_in_fan_out

    def _weight_out_in(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        return weight.T if self.fan_in_fan_out else weight

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        delta = self._product(adapter_name)
        return delta.T if self.fan_in_fan_out else delta

    def _delta(self, x: torch.Tensor, name: str, result: torch.Tensor) -> torch.Tensor:
        a = self.tinylora_A[name]
        x = self.tinylora_dropout[name](x).to(a.dtype)
        h = F.linear(F.linear(x, a.to(x.device)), self.core(name).to(x.device))
        return F.linear(h, self.tinylora_B[name].to(x.device))

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        return self._forward(x, self._delta, *args, **kwargs).to(x.dtype)


class TinyLoraEmbedding(TinyLoraLayer):
    """TinyLoRA on `nn.Embedding`: the update looks up rows of `B R A` (`A [r, dim]`, `B [num, r]`)."""

    def _weight_out_in(self) -> torch.Tensor:
        return self.get_base_layer().weight  # [num_embeddings, embedding_dim]

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        return self._product(adapter_name)

    def _delta(self, ids: torch.Tensor, name: str, result: torch.Tensor) -> torch.Tensor:
        like = dict(device=result.device, dtype=result.dtype)
        a, b, r = self.tinylora_A[name].to(**like), self.tinylora_B[name].to(**like), self.core(name).to(**like)
        return self.tinylora_dropout[name](F.embedding(ids, b)) @ r @ a

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        return self._forward(x, self._delta, *args, **kwargs)
