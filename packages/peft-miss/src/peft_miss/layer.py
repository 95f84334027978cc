"""MiSS adapter layer for `nn.Linear` (the only layer type MiSS supports, as in Hugging Face PEFT).

Variants (per adapter, chosen by `init_weights`):
- balanced (`True` / `False`) and `"mini"`: a shard `S = miss_block` (`[r, out]`; for "mini" `[r, mini_r]`
  tiled to `[r, out]`) is shared by every group of `r` input columns: `ΔW[o, i] = S[i mod r, o]`. The forward
  adds `(Σ_groups x_group) @ S` to the base output, the input padded with zeros to a multiple of `r`.
- `"bat"`: `miss_block` is `[out/r, r, r]`; each `r x r` block `W_hg` of the weight (output block `h`, input
  block `g`) becomes `W_hg + W_hg B_h + B_h`. The forward runs with that weight; unmerging inverts
  `(I + B_h)`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer

from .config import MissConfig


def bat_transform(weight: torch.Tensor, block: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """'bat': blocks `W_hg -> W_hg B_h + B_h` (the delta; add it to `W`), or with `reverse` the original
    weight `(W'_hg - B_h)(I + B_h)^-1` recovered from a merged `W'`."""
    out_features, in_features = weight.shape
    r = block.size(-1)
    blocks = weight.reshape(out_features // r, r, in_features // r, r).permute(2, 0, 1, 3)
    if reverse:
        eye = torch.eye(r, device=block.device, dtype=torch.float32)
        inverse = torch.inverse(eye + block.float()).to(block.dtype)
        result = (blocks - block) @ inverse
    else:
        result = blocks @ block + block
    return result.permute(1, 2, 0, 3).reshape(out_features, in_features)


class MissLinear(BaseTunerLayer):
    """MiSS on an `nn.Linear`."""

    adapter_layer_names = ("miss_block",)
    other_param_names = ("miss_r", "miss_dropout", "miss_mini_r", "miss_fn")
    container_types = {"miss_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features

    # -- adapters ---------------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, config: MissConfig) -> None:  # type: ignore[override]
        r = config.r
        variant = config.init_weights
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        if r > self.in_features:
            raise ValueError(f"`r` ({r}) must be less than or equal to in_features ({self.in_features})")
        if variant == "bat":
            if self.in_features % r != 0 or self.out_features % r != 0:
                raise ValueError(
                    f"MiSS init_weights='bat' needs r ({r}) to divide in_features ({self.in_features}) and "
                    f"out_features ({self.out_features}): the weight must split into [r, r] blocks."
                )
            block = torch.zeros(self.out_features // r, r, r)
        elif variant == "mini":
            if config.mini_r <= 0 or self.out_features % config.mini_r != 0:
                raise ValueError(
                    f"MiSS init_weights='mini' needs mini_r ({config.mini_r}) to divide out_features ({self.out_features})."
                )
            block = torch.zeros(r, config.mini_r)
        else:
            block = torch.zeros(r, self.out_features)
            if variant is False:
                nn.init.kaiming_uniform_(block, a=math.sqrt(5))
        self.miss_block[adapter_name] = nn.Parameter(block)
        self.miss_r[adapter_name] = r
        self.miss_mini_r[adapter_name] = config.mini_r
        self.miss_fn[adapter_name] = variant
        self.miss_dropout[adapter_name] = nn.Dropout(config.miss_dropout) if config.miss_dropout > 0 else nn.Identity()
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def shard(self, adapter_name: str) -> torch.Tensor:
        """The `[r, out]` shard of a balanced / 'mini' adapter ('mini' blocks are tiled along the outputs)."""
        block = self.miss_block[adapter_name]
        if self.miss_fn[adapter_name] == "mini":
            block = block.repeat(1, self.out_features // self.miss_mini_r[adapter_name])
        return block

    def supports_delta_weight(self, adapter_name: str) -> bool:
        return adapter_name in self.miss_block  # W + ΔW ('bat': ΔW depends on the current W)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """`ΔW [out, in]` of `adapter_name` for the current base weight (for 'bat' it depends on that weight)."""
        weight = self.get_base_layer().weight
        if self.miss_fn[adapter_name] == "bat":
            block = self.miss_block[adapter_name]
            return bat_transform(weight.data.to(block.dtype), block)
        shard = self.shard(adapter_name)
        r = shard.size(0)
        repeats = -(-self.in_features // r)
        return shard.t().repeat(1, repeats)[:, : self.in_features]

    # -- merging (additive, except 'bat' unmerge) ------------------------------------------------------
    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        if self.miss_fn[adapter_name] != "bat":
            super().unmerge_adapter_weights(adapter_name)
            return
        weight = self.get_base_layer().weight
        block = self.miss_block[adapter_name]
        weight.data = bat_transform(weight.data.to(block.dtype), block, reverse=True).to(weight.dtype)

    # -- forward (BaseTunerLayer.forward handles disabling, merges and mixed batches) --------------
    def _branch(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        shard = self.shard(adapter_name)
        r = shard.size(0)
        if x.size(-1) % r != 0:
            x = F.pad(x, (0, (r - x.size(-1) % r) % r))
        if x.is_floating_point() and x.dtype != shard.dtype:
            x = x.to(shard.dtype)
        x = self.miss_dropout[adapter_name](x)
        return torch.sum(x.reshape(*x.shape[:-1], x.size(-1) // r, r), dim=-2) @ shard

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        previous_dtype = x.dtype
        if not names:
            return self.base_layer(x, *args, **kwargs)
        if any(self.miss_fn[n] == "bat" for n in names):
            # Weight path: apply the adapters to the weight in order (balanced ones add their ΔW).
            base = self.get_base_layer()
            weight = base.weight.data.clone()
            for name in names:
                block = self.miss_block[name]
                if self.miss_fn[name] == "bat":
                    weight = weight + bat_transform(weight.to(block.dtype), block)
                else:
                    weight = weight + self.get_delta_weight(name)
            if x.is_floating_point() and x.dtype != weight.dtype:
                x = x.to(weight.dtype)
            bias = base.bias.to(weight.dtype) if base.bias is not None else None
            return F.linear(x, weight, bias).to(previous_dtype)
        result = self.base_layer(x, *args, **kwargs)
        for name in names:
            result = result + self._branch(x, name)
        return result.to(previous_dtype)

    def __repr__(self) -> str:
        return "miss." + super().__repr__()
