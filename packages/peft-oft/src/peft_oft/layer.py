"""OFT adapter layers for `nn.Linear`, `nn.Conv2d` and `nn.Embedding`.

Linear: the input is rotated block-wise before the base layer, `y = base(x @ R)`, so merging sets
`W <- W @ R^T` (`R` block-diagonal). Conv2d: the same rotation acts on the flattened filter
(`in_channels * kh * kw`), `W <- W @ R^T`, and the unmerged forward convolves with that rotated filter;
so the adapter is the identity at init and the merged layer gives the unmerged output.

Hugging Face PEFT 0.21.2's *unmerged* Conv2d forward instead unfolds the input into patches (stride 1,
no padding), rotates them and folds them back, which sums overlapping patches: for kernels larger
than 1x1 that is neither the identity at init nor equal to its own merged layer. Here the unmerged
Conv2d output equals HF's merged output (and HF's unmerged output for 1x1 kernels).

Embedding: the looked-up vectors are rotated, `y = emb(ids) @ R`, so merging sets `W <- W @ R`
(HF keeps these rotations in `oft_embedding_R`).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.weight_transform import conv_filter_features, flat_weight, set_flat_weight

from .config import OFTConfig
from .rotation import OFTRotation


def adjust_to_divisor(total: int, value: int) -> int:
    """HF's rule for an `r` / `oft_block_size` that does not divide `total`: the nearest divisor.

    Values above `total` become `total`; otherwise the closest divisor below or above, the lower one on a tie.
    """
    if value >= total:
        return total
    higher = value
    while higher <= total and total % higher != 0:
        higher += 1
    lower = value
    while lower > 1 and total % lower != 0:
        lower -= 1
    return lower if (value - lower) <= (higher - value) else higher


def resolve_blocks(total: int, r: int, block_size: int) -> tuple[int, int]:
    """`(r, block_size)` for a layer whose rotated dimension is `total`, adjusting like HF (with a warning)."""
    if r == 0 and block_size != 0:
        if total % block_size != 0 or block_size > total:
            adjusted = adjust_to_divisor(total, block_size)
            warnings.warn(
                f"Invalid `oft_block_size` ({block_size})! Adjusted `oft_block_size` to ({adjusted}).", UserWarning, stacklevel=4
            )
            block_size = adjusted
        return total // block_size, block_size
    if r != 0 and block_size == 0:
        if total % r != 0 or r > total:
            adjusted = adjust_to_divisor(total, r)
            warnings.warn(f"Invalid `r` ({r})! Adjusted `r` to ({adjusted}).", UserWarning, stacklevel=4)
            r = adjusted
        return r, total // r
    raise ValueError(f"OFT needs exactly one of r ({r}) and oft_block_size ({block_size}) to be non-zero.")


class OFTLayer(BaseTunerLayer):
    """Shared OFT layer logic; subclasses define the rotated dimension and how the base layer runs."""

    # HF's layout: `oft_R` on Linear/Conv2d, `oft_embedding_R` on Embedding (the other one stays empty).
    adapter_layer_names = ("oft_R", "oft_embedding_R")
    other_param_names = ("r", "oft_block_size")
    container_types = {"oft_R": nn.ModuleDict, "oft_embedding_R": nn.ModuleDict}
    supports_mixed_batch = True
    rotations_attr = "oft_R"

    # -- to define per layer type ---------------------------------------------------------------
    @property
    def rotations(self) -> nn.ModuleDict:
        """The per-adapter `OFTRotation` modules of this layer."""
        return getattr(self, self.rotations_attr)

    @property
    def rotated_features(self) -> int:
        """Length of the vectors the rotation acts on: the input features (a conv layer: its filter's length)."""
        return self.in_features

    def __repr__(self) -> str:
        return "oft." + super().__repr__()

    # -- adapters ---------------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, config: OFTConfig) -> None:  # type: ignore[override]
        r, block_size = resolve_blocks(self.rotated_features, config.r, config.oft_block_size)
        if config.module_dropout:
            warnings.warn(
                f"OFT module_dropout={config.module_dropout} has no effect: Hugging Face PEFT 0.21.2's OFT layers never "
                f"apply it, and this package matches their outputs.",
                UserWarning,
                stacklevel=3,
            )
        rotation = OFTRotation(
            r,
            block_size,
            self.rotated_features,
            coft=config.coft,
            eps=config.eps,
            block_share=config.block_share,
            use_cayley_neumann=config.use_cayley_neumann,
            num_cayley_neumann_terms=config.num_cayley_neumann_terms,
        )
        with torch.no_grad():
            if config.init_weights:
                rotation.weight.zero_()
            else:
                rotation.weight.normal_(mean=0.0, std=0.1)
        self.rotations[adapter_name] = rotation
        self.r[adapter_name] = r
        self.oft_block_size[adapter_name] = block_size
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def rotation_matrix(self, adapter_name: str) -> torch.Tensor:
        """The block-diagonal `[n, n]` rotation of `adapter_name` (fp32 math for half-precision on CPU, as HF)."""
        module: OFTRotation = self.rotations[adapter_name]  # type: ignore[assignment]
        dtype = module.weight.dtype
        if module.weight.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
            original = module.weight.data
            module.weight.data = original.float()
            try:
                return module.matrix().to(dtype)
            finally:
                module.weight.data = original
        return module.matrix()

    # -- merging ----------------------------------------------------------------------------------
    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        rotation = self.rotation_matrix(adapter_name)
        flat = flat_weight(self.get_base_layer())
        merged = torch.mm(rotation, flat.t().to(rotation.dtype)).t()
        if safe_merge:
            self._check_finite(merged, adapter_name)
        set_flat_weight(self.get_base_layer(), merged)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        rotation = self.rotation_matrix(adapter_name)
        dtype = rotation.dtype
        inverse = torch.linalg.inv(rotation.float()).to(dtype)
        flat = flat_weight(self.get_base_layer())
        set_flat_weight(self.get_base_layer(), torch.mm(inverse, flat.t().to(dtype)).t())


class Linear(OFTLayer):
    """OFT on an `nn.Linear`: `y = base(x @ R)` with `R` block-diagonal orthogonal."""

    features_from_base = True  # sizes of the wrapped nn.Linear (`base_layer` may be another method's layer)

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        previous_dtype = x.dtype
        for name in names:
            rotation: OFTRotation = self.rotations[name]  # type: ignore[assignment]
            if x.is_floating_point() and x.dtype != rotation.weight.dtype:
                x = x.to(rotation.weight.dtype)
            x = rotation.rotate(x)
        return self.base_layer(x.to(previous_dtype), *args, **kwargs).to(previous_dtype)


class Conv2d(OFTLayer):
    """OFT on an `nn.Conv2d`: the flattened filter (`in_channels * kh * kw`) is rotated, `W <- W @ R^T`."""

    features_from_base = True  # in_features / out_features: the wrapped layer's

    @property
    def rotated_features(self) -> int:
        return conv_filter_features(self.get_base_layer(), "OFT")

    def rotated_weight(self, names: Sequence[str]) -> torch.Tensor:
        """The base filter with the adapters' rotations applied (in the order the inputs would be rotated)."""
        base = self.get_base_layer()
        flat = base.weight.reshape(base.weight.shape[0], -1)
        for name in reversed(list(names)):  # x @ R1 @ R2 == x @ (W (R1 R2)^T)^T: apply R2 first to W
            rotation = self.rotation_matrix(name)
            flat = torch.mm(rotation, flat.t().to(rotation.dtype)).t()
        return flat.reshape(base.weight.shape).contiguous().to(base.weight.dtype)

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        if not names:
            return self.base_layer(x, *args, **kwargs)
        base = self.get_base_layer()
        previous_dtype = x.dtype
        weight = self.rotated_weight(names)
        return base._conv_forward(x.to(weight.dtype), weight, base.bias).to(previous_dtype)


class Embedding(OFTLayer):
    """OFT on an `nn.Embedding`: the embedding vectors are rotated, `y = emb(ids) @ R` (merged: `W <- W @ R`)."""

    rotations_attr = "oft_embedding_R"

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()  # `base_layer` may be another method's layer (mixed models)
        self.in_features = base.embedding_dim
        self.out_features = base.num_embeddings

    def adapted_forward(self, x: torch.Tensor, names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        out_dtype = result.dtype
        for name in names:
            rotation: OFTRotation = self.rotations[name]  # type: ignore[assignment]
            if result.dtype != rotation.weight.dtype:
                result = result.to(rotation.weight.dtype)
            result = rotation.rotate(result)
        return result.to(out_dtype)

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        rotation = self.rotation_matrix(adapter_name)
        weight = self.get_base_layer().weight
        merged = torch.mm(weight.data.to(rotation.dtype), rotation)
        if safe_merge:
            self._check_finite(merged, adapter_name)
        weight.data = merged.contiguous().to(weight.dtype)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        rotation = self.rotation_matrix(adapter_name)
        inverse = torch.linalg.inv(rotation.float()).to(rotation.dtype)
        weight = self.get_base_layer().weight
        weight.data = torch.mm(weight.data.to(inverse.dtype), inverse).to(weight.dtype)
