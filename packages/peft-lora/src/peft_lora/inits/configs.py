"""Sub-configs of the data-driven initialisations (Hugging Face PEFT 0.21.2's fields and defaults).

They live in `LoraConfig` as `loftq_config`, `eva_config`, `corda_config` and `lora_ga_config` and are
saved as plain JSON objects; `as_subconfig` turns a loaded dict back into the dataclass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, TypeVar

from peft_core.errors import ConfigError

T = TypeVar("T")


def as_subconfig(value: Any, cls: type[T], owner: str) -> T | None:
    """`value` (None, an instance or a dict from adapter_config.json) as a `cls` instance."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"{owner}: unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}.")
        try:
            return cls(**value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{owner}: invalid {cls.__name__} {value!r} ({exc}).") from exc
    raise ConfigError(f"{owner} must be a {cls.__name__}, a dict or None, got {value!r}.")


@dataclass
class LoftQConfig:
    """LoftQ: quantize the base weight and start the adapter from the SVD of the quantization error."""

    loftq_bits: int = field(default=4, metadata={"help": "Quantization bits (4: NF4, 8: int8)."})
    loftq_iter: int = field(default=1, metadata={"help": "Alternating quantize / SVD iterations."})

    def __post_init__(self) -> None:
        if self.loftq_bits not in (4, 8):
            raise ConfigError(f"LoftQConfig.loftq_bits must be 4 (NF4) or 8 (int8), got {self.loftq_bits!r}.")
        if not isinstance(self.loftq_iter, int) or self.loftq_iter <= 0:
            raise ConfigError(f"LoftQConfig.loftq_iter must be a positive integer, got {self.loftq_iter!r}.")


@dataclass
class EvaConfig:
    """EVA: A from the principal components of each layer's inputs on data, ranks redistributed."""

    rho: float = field(default=2.0, metadata={"help": "Largest rank of a layer: r * rho (>= 1)."})
    tau: float = field(default=0.99, metadata={"help": "Cosine similarity of components that stops the SVD steps."})
    use_label_mask: bool = field(default=True, metadata={"help": "Ignore positions whose label is label_mask_value."})
    label_mask_value: int = field(default=-100, metadata={"help": "Label of ignored positions."})
    whiten: bool = field(default=False, metadata={"help": "Whiten the components (divide by singular values)."})
    adjust_scaling_factors: bool = field(
        default=True, metadata={"help": "Keep every layer's alpha / r after rank redistribution."}
    )

    def __post_init__(self) -> None:
        if self.rho < 1.0:
            raise ConfigError(f"EvaConfig.rho must be >= 1.0, got {self.rho!r}.")
        if not 0.0 <= self.tau <= 1.0:
            raise ConfigError(f"EvaConfig.tau must be between 0.0 and 1.0, got {self.tau!r}.")


@dataclass
class CordaConfig:
    """CorDA: context-oriented decomposition of each weight with the covariance of its inputs on data."""

    cache_file: Optional[str] = field(default=None, metadata={"help": "File caching the SVD results."})
    covariance_file: Optional[str] = field(default=None, metadata={"help": "File caching the covariance matrices."})
    corda_method: Literal["ipm", "kpm"] = field(
        default="ipm", metadata={"help": "'ipm' (largest components, instruction-previewed) or 'kpm' (smallest)."}
    )
    verbose: bool = field(default=False, metadata={"help": "Show progress."})
    use_float16_for_covariance: bool = field(default=False, metadata={"help": "Half-precision covariance."})
    prune_temporary_fields: bool = field(default=True, metadata={"help": "Drop temporary fields after preprocessing."})

    def __post_init__(self) -> None:
        if self.corda_method not in ("ipm", "kpm"):
            raise ConfigError(f"CordaConfig.corda_method must be 'ipm' or 'kpm', got {self.corda_method!r}.")


@dataclass
class LoraGAConfig:
    """LoRA-GA: A and B from the SVD of the full fine-tuning gradient estimated on data."""

    direction: Literal["ArBr", "A2rBr", "ArB2r", "random"] = field(
        default="ArB2r", metadata={"help": "How the gradient's singular vectors are split between A and B."}
    )
    scale: Literal["stable", "weight_svd", "gd_scale", "unit"] = field(
        default="stable", metadata={"help": "Scaling of the initial factors."}
    )
    stable_gamma: int = field(default=16, metadata={"help": "Gamma of the 'stable' scaling."})

    def __post_init__(self) -> None:
        if self.direction not in ("ArBr", "A2rBr", "ArB2r", "random"):
            raise ConfigError(f"LoraGAConfig.direction must be 'ArBr', 'A2rBr', 'ArB2r' or 'random', got {self.direction!r}.")
        if self.scale not in ("stable", "weight_svd", "gd_scale", "unit"):
            raise ConfigError(f"LoraGAConfig.scale must be 'stable', 'weight_svd', 'gd_scale' or 'unit', got {self.scale!r}.")
