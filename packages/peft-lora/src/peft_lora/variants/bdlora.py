"""BD-LoRA (`use_bdlora`): LoRA factors that are block-diagonal, so that a LoRA adapter shards like its
base layer under tensor parallelism (row-sharded layers: block-diagonal A; column-sharded: block-diagonal B).

A block-diagonal factor keeps only its `nblocks` diagonal blocks, stacked: `weight [out, in/nblocks]`
(Hugging Face PEFT 0.21.2's layout and keys). A block-diagonal A is Kaiming-initialised (`a = 0`, as
HF does), a block-diagonal B starts at zero. Forward, merge and unmerge are LoRA's with the full
block-diagonal matrices.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from peft_core.errors import ConfigError
from torch import nn

from . import LoraVariant


class BlockDiagonalLinear(nn.Module):
    """`x @ blockdiag(W_1, ..., W_n)ᵀ` with the blocks stacked in `weight [out, in/n]`."""

    def __init__(self, in_features: int, out_features: int, nblocks: int, init_zero: bool, like: torch.Tensor) -> None:
        super().__init__()
        if in_features % nblocks or out_features % nblocks:
            raise ConfigError(
                f"BD-LoRA: {in_features} x {out_features} factors can't be split into {nblocks} diagonal blocks; "
                f"choose nblocks dividing both (and the rank)."
            )
        self.in_features, self.out_features, self.nblocks = in_features, out_features, nblocks
        self.weight = nn.Parameter(torch.empty(out_features, in_features // nblocks, dtype=like.dtype, device=like.device))
        if init_zero:
            nn.init.zeros_(self.weight)
        else:
            nn.init.kaiming_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:-1]
        x = x.reshape(-1, x.shape[-1]) if x.dim() != 2 else x
        n = self.nblocks
        blocks = x.reshape(x.shape[0], n, x.shape[-1] // n)
        out = torch.einsum("bim,inm->bin", blocks, self.weight.view(n, self.out_features // n, -1))
        return out.reshape(*leading, -1)

    def full_weight(self) -> torch.Tensor:
        return torch.block_diag(*torch.chunk(self.weight, self.nblocks, dim=0))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nblocks={self.nblocks}"


class BdLoraVariant(LoraVariant):
    option, label = "use_bdlora", "BD-LoRA"

    def init(self, layer: Any, name: str, config: Any) -> None:
        key = layer.__dict__.get("target_key", "")
        in_a = any(pattern in key for pattern in self.settings.target_modules_bd_a or [])
        in_b = any(pattern in key for pattern in self.settings.target_modules_bd_b or [])
        if in_a and in_b:
            raise ConfigError(f"BD-LoRA: {key!r} matches both the block-diagonal A and B patterns.")
        if self.settings.match_strict and not (in_a or in_b):
            raise ConfigError(
                f"BD-LoRA: {key!r} matches neither target_modules_bd_a nor target_modules_bd_b; add it to one, or set "
                f"match_strict=False to give it a plain LoRA."
            )
        reference = layer.get_base_layer().weight
        r = layer.r[name]
        if in_a:
            layer.lora_A[name] = BlockDiagonalLinear(layer.in_features, r, self.settings.nblocks, False, reference)
        elif in_b:
            layer.lora_B[name] = BlockDiagonalLinear(r, layer.out_features, self.settings.nblocks, True, reference)

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        x = layer.lora_dropout[name](x)
        x = layer._cast_input(x, lora_a.weight)
        result += lora_b(lora_a(x)) * layer.scaling[name]
        return result

    def delta_weight(self, layer: Any, name: str) -> torch.Tensor:
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        dtype = layer.get_base_layer().weight.dtype
        cast = lora_b.weight.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16)
        weight_a = lora_a.full_weight() if isinstance(lora_a, BlockDiagonalLinear) else lora_a.weight
        weight_b = lora_b.full_weight() if isinstance(lora_b, BlockDiagonalLinear) else lora_b.weight
        if cast:
            weight_a, weight_b = weight_a.float(), weight_b.float()
        delta = weight_b @ weight_a
        delta = (delta.T if layer.fan_in_fan_out else delta) * layer.scaling[name]
        return delta.to(dtype)
