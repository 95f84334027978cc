"""`TinyLoraConfig`: Hugging Face PEFT's TinyLoRA config (0.21.2), field for field (no `exclude_modules`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class TinyLoraConfig(PeftConfig):
    """TinyLoRA: LoRA-XS with its r×r core replaced by a tiny trained vector.

    Each adapted layer keeps the frozen truncated SVD of its weight, `A = √S Vh [r, in]` and
    `B = U √S [out, r]`, and fixed random tensors `P [u, r, r]`; the update is `B R A` with
    `R = Σ_i v_i P_i`. The trained vectors `v [u]` live on the tuner and may be shared by groups of
    layers (`weight_tying`).

    - `r`: SVD rank (clipped to the layer's size); `u`: length of each trained vector.
    - `weight_tying`: 0.0 gives every layer its own `v`, 1.0 one `v` for all, in between groups of
      consecutive layers.
    - `projection_seed`: `P` of the i-th targeted layer is drawn from `projection_seed + i`;
      `save_projection`: save `P` (else regenerate it on load).
    - `init_weights`: True: `v = 0` (a no-op); "uniform" (and, here, False): `U(-init_v_bound, init_v_bound)`.
    """

    peft_type: str = "TINYLORA"
    r: int = field(default=2, metadata={"help": "Rank of the frozen truncated SVD."})
    u: int = field(default=64, metadata={"help": "Length of each trained vector v."})
    weight_tying: float = field(default=0.0, metadata={"help": "0.0: a v per layer ... 1.0: one v for all layers."})
    projection_seed: int = field(default=42, metadata={"help": "Base seed of the projection tensors P."})
    save_projection: bool = field(default=True, metadata={"help": "Save P with the adapter (else regenerate it)."})
    init_v_bound: float = field(default=0.02, metadata={"help": "Bound of the uniform init of v."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    tinylora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch."})
    fan_in_fan_out: bool = field(default=False, metadata={"help": "Weights stored (in, out) (GPT-2 Conv1D); set automatically."})
    bias: str = field(default="none", metadata={"help": "Biases to train and save: 'none', 'all' or 'tinylora_only'."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    init_weights: Union[bool, str] = field(default=True, metadata={"help": "True: v = 0 (no-op); 'uniform': random v."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices to adapt."})
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers') for layers_to_transform."}
    )

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for count in ("u", "projection_seed"):
            value = getattr(self, count)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}.{count} must be an integer, got {value!r}.")
        if self.u <= 0:
            raise ConfigError(f"{name}.u must be a positive integer, got {self.u}.")
        for number in ("weight_tying", "init_v_bound"):
            value = getattr(self, number)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name}.{number} must be a number, got {value!r}.")
        if not 0.0 <= self.weight_tying <= 1.0:
            raise ConfigError(f"{name}.weight_tying must be between 0.0 and 1.0, got {self.weight_tying}.")
        if not (isinstance(self.init_weights, bool) or self.init_weights == "uniform"):
            raise ConfigError(f"{name}.init_weights must be True, False or 'uniform', got {self.init_weights!r}.")
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'tinylora_only', got {self.bias!r}.")
        if not isinstance(self.save_projection, bool):
            raise ConfigError(f"{name}.save_projection must be True or False, got {self.save_projection!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        if not self.save_projection:
            warnings.warn(
                "TinyLoraConfig.save_projection=False: the projection tensors P are not saved; they are regenerated "
                "from projection_seed with a CPU torch.Generator on load, which may differ across platforms.",
                UserWarning,
                stacklevel=3,
            )
