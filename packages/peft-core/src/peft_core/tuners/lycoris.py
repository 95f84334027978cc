"""Shared base of the LyCORIS family: adapters whose weight delta is a product of small factors.

Methods of this family (Hugging Face PEFT's `LycorisConfig` / `LycorisLayer` / `LycorisTuner`)
build a full weight delta `ΔW` from a few small trainable tensors, scale it by `alpha / r`, and add
`F.linear(x, ΔW)` (or the matching convolution) to the base layer's output. Everything except the
factorisation is shared and lives here:

- `LycorisConfig`: the common config fields (`r`, `alpha`, `rank_dropout`, `module_dropout`,
  `use_effective_conv2d`, `init_weights`, `rank_pattern`, `alpha_pattern`, targeting fields) and
  their validation. A method's config subclasses it and adds its own fields and `peft_type`.
- `LycorisLayer`: per-adapter rank / alpha / scaling / dropout bookkeeping, the forward pass with
  module dropout and mixed-adapter batches, rank dropout, reshaping of `ΔW` to the base weight, and
  the Linear / Conv1d / Conv2d application of `ΔW`. A method's layer subclasses it, lists its
  parameter containers in `adapter_layer_names` and implements `create_adapter_parameters` (make and
  initialise the tensors) and `delta_weight` (the scaled product, in any shape with the base
  weight's number of elements).
- `LycorisTuner`: rank / alpha patterns and the choice of layer in `_create_and_replace`. A method's
  model subclasses it, sets `prefix` and `layer_cls`.

Numerics follow Hugging Face PEFT 0.21.2 operation for operation (order of the random draws in
training mode included), so outputs are bit-identical for the same tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..config import PeftConfig
from ..config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields, pattern_field
from ..errors import ConfigError
from .layer import BaseTunerLayer
from .matching import pattern_value
from .mixed_batch import current_batch_plan
from .tuner import BaseTuner

__all__ = [
    "LycorisConfig",
    "LycorisLayer",
    "LycorisTuner",
    "SUPPORTED_BASE_LAYERS",
    "base_layer_kind",
]

# The base layer types the family adapts (subclasses included), by kind.
SUPPORTED_BASE_LAYERS: dict[str, type[nn.Module]] = {"linear": nn.Linear, "conv1d": nn.Conv1d, "conv2d": nn.Conv2d}


def base_layer_kind(module: nn.Module) -> str | None:
    """'linear', 'conv1d' or 'conv2d' for a supported base layer, else None."""
    for kind, cls in SUPPORTED_BASE_LAYERS.items():
        if isinstance(module, cls):
            return kind
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class LycorisConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
    """Fields shared by the LyCORIS-family configs, with Hugging Face PEFT 0.21.2's names and defaults."""

    r: int = field(default=8, metadata={"help": "Rank of the factors."})
    alpha: Union[int, float] = field(default=8, metadata={"help": "Scaling numerator: the delta is scaled by alpha / r."})
    rank_dropout: float = field(
        default=0.0, metadata={"help": "Training only: probability of zeroing each output row of the weight delta."}
    )
    module_dropout: float = field(
        default=0.0, metadata={"help": "Training only: probability of skipping the adapter in a forward pass."}
    )
    use_effective_conv2d: bool = field(
        default=False,
        metadata={"help": "Conv layers with a kernel larger than 1: factorise the kernel with a small core tensor."},
    )
    init_weights: bool = field(
        default=True, metadata={"help": "True: the new adapter is a no-op; False: random factors (not a no-op)."}
    )
    rank_pattern: Optional[dict] = pattern_field("rank, overriding r")
    alpha_pattern: Optional[dict] = pattern_field("alpha, overriding alpha")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._validate_common()

    def _validate_common(self) -> None:
        name = type(self).__name__
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ConfigError(f"{name}.r must be a positive integer (the rank), got {self.r!r}.")
        if not _is_number(self.alpha):
            raise ConfigError(f"{name}.alpha must be a number, got {self.alpha!r}.")
        for attr in ("rank_dropout", "module_dropout"):
            value = getattr(self, attr)
            if not _is_number(value) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name}.{attr} must be a probability in [0, 1), got {value!r}.")
        for attr in ("rank_pattern", "alpha_pattern"):
            patterns = getattr(self, attr) or {}
            for key, value in patterns.items():
                bad = not _is_number(value) or (attr == "rank_pattern" and (not isinstance(value, int) or value <= 0))
                if bad:
                    kind = "a positive integer" if attr == "rank_pattern" else "a number"
                    raise ConfigError(f"{name}.{attr}[{key!r}] must be {kind}, got {value!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(
                f"{name}: layers_pattern={self.layers_pattern!r} needs layers_to_transform (which layer indices to "
                f"adapt); set layers_to_transform or drop layers_pattern."
            )


class LycorisLayer(BaseTunerLayer):
    """An adapter layer whose delta is a full weight built from small factors (Linear, Conv1d, Conv2d)."""

    other_param_names: tuple[str, ...] = ("r", "alpha", "scaling", "rank_dropout", "rank_dropout_scale", "module_dropout")
    supports_mixed_batch = True
    # Rank-dropout mask dtype: the delta's dtype (True) or float32 (False). Methods differ in HF.
    rank_dropout_mask_in_weight_dtype: ClassVar[bool] = True

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        kind = base_layer_kind(base)
        if kind is None:
            raise TypeError(
                f"{type(self).__name__} can't adapt a {type(base).__name__}; supported base layers: "
                f"{', '.join(c.__name__ for c in SUPPORTED_BASE_LAYERS.values())}."
            )
        self.kind = kind
        if kind == "linear":
            self.in_features, self.out_features = base.in_features, base.out_features
        else:
            self.in_features, self.out_features = base.in_channels, base.out_channels
        self.r: dict[str, int] = {}
        self.alpha: dict[str, float] = {}
        self.scaling: dict[str, float] = {}
        self.rank_dropout: dict[str, float] = {}
        self.rank_dropout_scale: dict[str, bool] = {}
        self.module_dropout: dict[str, float] = {}

    # -- shapes -----------------------------------------------------------------------------
    @property
    def kernel_size(self) -> tuple[int, ...]:
        """The base kernel size: () for Linear, (k,) for Conv1d, (kh, kw) for Conv2d."""
        return () if self.kind == "linear" else tuple(self.get_base_layer().kernel_size)

    @property
    def in_per_group(self) -> int:
        """Input features (channels per group for convolutions) of one output row of the weight."""
        base = self.get_base_layer()
        return self.in_features if self.kind == "linear" else base.in_channels // base.groups

    def flat_in_features(self) -> int:
        """Elements in one output row of the base weight (`in/groups * prod(kernel)` for convolutions)."""
        n = self.in_per_group
        for k in self.kernel_size:
            n *= k
        return n

    def uses_effective_conv(self, use_effective_conv2d: bool) -> bool:
        """The effective-conv factorisation applies only to convolutions with a kernel larger than 1."""
        return bool(use_effective_conv2d) and self.kind != "linear" and any(k != 1 for k in self.kernel_size)

    # -- adapters ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, alpha: float, config: Any) -> None:
        """Add adapter `adapter_name` with rank `r` and alpha `alpha` (after patterns) from `config`."""
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"The rank r must be a positive integer, got {r!r} for adapter {adapter_name!r}.")
        self.r[adapter_name] = r
        self.alpha[adapter_name] = alpha
        self.scaling[adapter_name] = alpha / r
        self.rank_dropout[adapter_name] = config.rank_dropout
        # Configs without `rank_dropout_scale` always rescale the kept rows by 1 / mean(mask).
        self.rank_dropout_scale[adapter_name] = bool(getattr(config, "rank_dropout_scale", True))
        self.module_dropout[adapter_name] = config.module_dropout
        self.create_adapter_parameters(adapter_name, r, config)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def create_adapter_parameters(self, adapter_name: str, r: int, config: Any) -> None:
        """Create and initialise the adapter's tensors in this layer's containers."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_adapter_parameters")

    def delta_weight(self, adapter_name: str) -> torch.Tensor:
        """The scaled weight delta, in any shape holding as many elements as the base weight."""
        raise NotImplementedError(f"{type(self).__name__} must implement delta_weight")

    def get_delta_weight(self, adapter_name: str, *, apply_rank_dropout: bool = False) -> torch.Tensor:
        """`ΔW` in the base weight's shape; with `apply_rank_dropout`, whole output rows are dropped."""
        weight = self.delta_weight(adapter_name).reshape(self.get_base_layer().weight.shape)
        if apply_rank_dropout:
            # Drawn on the CPU generator, one value per output row, like Hugging Face PEFT.
            keep = torch.rand(weight.size(0)) > self.rank_dropout[adapter_name]
            mask = keep.to(weight.dtype) if self.rank_dropout_mask_in_weight_dtype else keep.float()
            mask = mask.view(-1, *[1] * (weight.dim() - 1)).to(weight.device)
            if self.rank_dropout_scale[adapter_name]:
                mask /= mask.mean()
            weight *= mask
        return weight

    def supports_delta_weight(self, adapter_name: str) -> bool:
        """Every adapter of the family adds `ΔW` (without rank dropout, i.e. at inference)."""
        return self.has_adapter(adapter_name)

    # -- forward ----------------------------------------------------------------------------
    def apply_delta(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """`x` through a layer like the base one with weight `delta` and no bias."""
        if x.dtype != delta.dtype:
            x = x.to(delta.dtype)
        if self.kind == "linear":
            return F.linear(x, delta)
        base = self.get_base_layer()
        conv = F.conv1d if self.kind == "conv1d" else F.conv2d
        return conv(x, delta, stride=base.stride, padding=base.padding, dilation=base.dilation, groups=base.groups)

    def delta_output(self, adapter_name: str, x: torch.Tensor) -> torch.Tensor:
        apply_rank_dropout = self.training and bool(self.rank_dropout[adapter_name])
        return self.apply_delta(x, self.get_delta_weight(adapter_name, apply_rank_dropout=apply_rank_dropout))

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        previous_dtype = x.dtype
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs).to(previous_dtype)
        result = self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is not None:  # eval only (checked by the tuner): no dropout
            result = result.clone()
            for name in plan.adapter_groups():
                if self.has_adapter(name):
                    rows = plan.rows(name, x.device)
                    result[rows] += self.delta_output(name, x[rows]).to(result.dtype)
            return result.to(previous_dtype)
        for name in self.active_adapters:
            if not self.has_adapter(name):
                continue
            # In training a uniform draw decides whether the adapter runs (drawn even when p = 0).
            if self.training and not bool(torch.rand(1) > self.module_dropout[name]):
                continue
            result = result + self.delta_output(name, x)
        return result.to(previous_dtype)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, adapters={self.adapter_names()}"


class LycorisTuner(BaseTuner):
    """Injects a `LycorisLayer` subclass (`layer_cls`) into every targeted Linear / Conv1d / Conv2d."""

    layer_cls: ClassVar[type[LycorisLayer]] = LycorisLayer

    def _create_and_replace(
        self,
        config: PeftConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        r = pattern_value(config.rank_pattern, current_key, config.r)
        alpha = pattern_value(config.alpha_pattern, current_key, config.alpha)
        if isinstance(target, self.layer_cls):
            target.update_layer(adapter_name, r=r, alpha=alpha, config=config)
            return
        base = self.wrapped_base(target, current_key)
        if base_layer_kind(base) is None:
            supported = ", ".join(c.__name__ for c in SUPPORTED_BASE_LAYERS.values())
            raise TypeError(
                f"Target module {current_key!r} is a {type(base).__name__}, which {type(self).__name__} can't adapt "
                f"(supported: {supported}). Remove it from target_modules or add it to exclude_modules."
            )
        layer = self.layer_cls(target)
        layer.update_layer(adapter_name, r=r, alpha=alpha, config=config)
        setattr(parent, target_name, layer)
