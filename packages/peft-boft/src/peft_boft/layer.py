"""BOFT adapter layers for `nn.Linear` and `nn.Conv2d`.

Linear: `y = s ⊙ (W (x @ B)ᵀ) + b`, i.e. the input is rotated by the butterfly matrix `B` and the
output (without bias) is scaled per output feature by `boft_s` (`[out, 1]`). Merging sets
`W <- (W @ Bᵀ) * boft_s`. Conv2d: the same on the flattened filter (`in_channels * kh * kw`), with
`boft_s` stored as `[1, out]` (HF's layout); the unmerged forward convolves with the rotated, scaled filter.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.weight_transform import conv_filter_features, flat_weight, set_flat_weight

from .butterfly import ButterflyPermutations, MultiplicativeDropout, butterfly_matrix, cayley
from .config import BOFTConfig


def resolve_blocks(n: int, block_size: int, block_num: int, n_factors: int) -> tuple[int, int]:
    """`(block_size, block_num)` for a layer whose rotated dimension is `n`, with HF's checks."""
    m = n_factors - 1
    if block_size == 0 and block_num != 0:
        if n % block_num != 0:
            raise ValueError(f"in_features ({n}) must be divisible by boft_block_num ({block_num})!")
        if m != 0:
            # on the CPU explicitly: under low_cpu_mem_usage layers are built inside torch.device("meta")
            if m > int(torch.log2(torch.tensor(float(block_num), device="cpu")).item()):
                raise ValueError(
                    f"Invalid combination of boft_n_butterfly_factor ({n_factors}) and boft_block_num ({block_num})!"
                )
            if block_num % (2**m) != 0:
                raise ValueError(
                    f"boft_block_num ({block_num}) must be a multiple of 2 raised to the power of "
                    f"boft_n_butterfly_factor ({n_factors})!"
                )
        block_size = n // block_num
    elif block_size != 0 and block_num == 0:
        if n % block_size != 0:
            raise ValueError(f"in_features ({n}) must be divisible by boft_block_size ({block_size})!")
        if m != 0 and (n < block_size * 2**m or n % (block_size * 2**m) != 0):
            raise ValueError(
                f"Invalid combination of in_features ({n}), boft_n_butterfly_factor ({n_factors}) and "
                f"boft_block_size ({block_size})!"
            )
        block_num = n // block_size
    else:
        raise ValueError("BOFT needs exactly one of boft_block_size and boft_block_num to be non-zero.")
    if m != 0:
        if block_num % 2 != 0:
            raise ValueError(f"boft_block_num ({block_num}) must be an even number!")
        if block_size % 2 != 0:
            raise ValueError(f"boft_block_size ({block_size}) must be an even number!")
    return block_size, block_num


class BOFTLayer(BaseTunerLayer):
    """Shared BOFT logic; subclasses define the rotated dimension, the scale layout and the forward."""

    adapter_layer_names = ("boft_R", "boft_s")
    other_param_names = ("boft_block_size", "boft_block_num", "boft_dropout", "boft_P")
    container_types = {"boft_dropout": nn.ModuleDict, "boft_P": nn.ModuleDict}
    supports_mixed_batch = True

    # -- to define per layer type ---------------------------------------------------------------
    @property
    def rotated_features(self) -> int:
        """Length of the vectors the rotation acts on: the input features (a conv layer: its filter's length)."""
        return self.in_features

    out_features: int

    def _scale_shape(self) -> tuple[int, int]:
        """Shape of the stored `boft_s`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return "boft." + super().__repr__()

    # -- adapters ---------------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, config: BOFTConfig) -> None:  # type: ignore[override]
        n = self.rotated_features
        factors = config.boft_n_butterfly_factor
        if factors < 1:
            raise ValueError(f"boft_n_butterfly_factor must be a positive integer, got {factors}.")
        block_size, block_num = resolve_blocks(n, config.boft_block_size, config.boft_block_num, factors)
        self.boft_P[adapter_name] = ButterflyPermutations(n, block_num, block_size, factors)
        self.boft_dropout[adapter_name] = (
            MultiplicativeDropout(config.boft_dropout) if config.boft_dropout > 0.0 else nn.Identity()
        )
        rotation = nn.Parameter(torch.zeros(factors, block_num, block_size, block_size))
        scale = nn.Parameter(torch.ones(*self._scale_shape()))
        with torch.no_grad():
            if not config.init_weights:
                rotation.normal_(mean=0.0, std=0.1)
                scale.normal_(mean=1.0, std=0.1)
        self.boft_R[adapter_name] = rotation
        self.boft_s[adapter_name] = scale
        self.boft_block_size[adapter_name] = block_size
        self.boft_block_num[adapter_name] = block_num
        self._move_adapter_to_device_of_base_layer(adapter_name)
        # The permutations are neither saved nor loaded, so core never moves them: follow the base layer
        # here (they are built on the CPU, also under low_cpu_mem_usage's meta-device context).
        ref = next((p for p in self.get_base_layer().parameters() if p.device.type != "meta"), None)
        if ref is not None:
            self.boft_P[adapter_name].to(ref.device)

    def rotation(self, adapter_name: str, dropout: bool = False) -> torch.Tensor:
        """The `[n, n]` butterfly rotation of `adapter_name` (block dropout applied when `dropout`)."""
        r = self.boft_R[adapter_name]
        n_factors, n_blocks, b, _ = r.shape
        blocks = cayley(r.view(n_factors * n_blocks, b, b)).view(n_factors, n_blocks, b, b)
        if dropout:
            blocks = self.boft_dropout[adapter_name](blocks)
        perms: torch.Tensor = self.boft_P[adapter_name].indices  # type: ignore[assignment]
        return butterfly_matrix(blocks, perms)

    def scale(self, adapter_name: str) -> torch.Tensor:
        """`boft_s` as an `[out, 1]` column."""
        return self.boft_s[adapter_name]

    # -- merging ----------------------------------------------------------------------------------
    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        rotation = self.rotation(adapter_name)
        flat = flat_weight(self.get_base_layer()).clone()
        merged = torch.mm(rotation, flat.t().to(rotation.dtype)).t() * self.scale(adapter_name)
        if safe_merge:
            self._check_finite(merged, adapter_name)
        set_flat_weight(self.get_base_layer(), merged)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        rotation = self.rotation(adapter_name)
        flat = flat_weight(self.get_base_layer()).clone()
        restored = torch.mm(rotation.t(), flat.t().to(rotation.dtype)).t()
        set_flat_weight(self.get_base_layer(), restored * (1 / self.scale(adapter_name)))

    # -- forward ----------------------------------------------------------------------------------
    def combined(self, names: Sequence[str], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotation `[n, n]` and scale `[out, 1]` of the adapters `names` applied in turn, in `like`'s dtype."""
        rotation = torch.eye(self.rotated_features, device=like.device, dtype=like.dtype)
        scale = torch.ones(self.out_features, 1, device=like.device, dtype=like.dtype)
        for name in names:
            butterfly = self.rotation(name, dropout=True).to(like)
            rotation = butterfly @ rotation
            scale = self.scale(name) * scale
        return rotation, scale


class Linear(BOFTLayer):
    """BOFT on an `nn.Linear`."""

    features_from_base = True  # sizes of the wrapped nn.Linear (`base_layer` may be another method's layer)

    def _scale_shape(self) -> tuple[int, int]:
        return (self.out_features, 1)

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        previous_dtype = x.dtype
        if not names:
            return self.base_layer(x, *args, **kwargs)
        rotation, scale = self.combined(names, x)
        result = self.base_layer(x @ rotation.to(previous_dtype), *args, **kwargs)
        bias = self.get_base_layer().bias
        if bias is not None:
            result = result - bias
        result = result * scale.squeeze(-1)
        if bias is not None:
            result = result + bias
        return result.to(previous_dtype)


class Conv2d(BOFTLayer):
    """BOFT on an `nn.Conv2d` (groups=1): rotation and scale act on the flattened filter."""

    features_from_base = True  # in_features / out_features: the wrapped layer's

    @property
    def rotated_features(self) -> int:
        return conv_filter_features(self.get_base_layer(), "BOFT")

    def _scale_shape(self) -> tuple[int, int]:
        return (1, self.out_features)

    def scale(self, adapter_name: str) -> torch.Tensor:
        return self.boft_s[adapter_name].transpose(0, 1)  # stored [1, out] as in HF

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        if not names:
            return self.base_layer(x, *args, **kwargs)
        base = self.get_base_layer()
        previous_dtype = x.dtype
        weight = base.weight
        rotation, scale = self.combined(names, x)
        flat = weight.reshape(self.out_features, -1)
        rotated = torch.mm(rotation, flat.t().to(rotation.dtype)).t() * scale
        rotated = rotated.reshape(weight.shape).contiguous()
        bias = base.bias.to(rotated.dtype) if base.bias is not None else None
        return base._conv_forward(x.to(rotated.dtype), rotated, bias).to(previous_dtype)

