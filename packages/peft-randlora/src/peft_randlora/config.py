"""`RandLoraConfig`: Hugging Face PEFT's RandLoRA config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class RandLoraConfig(PeftConfig):
    """RandLoRA: full-rank updates from frozen random bases shared by every adapted layer.

    Two frozen random bases per adapter, `randlora_A [r, 1, min_dim]` and `randlora_B [max_dim,
    n, r]` (`n = ceil(min_dim / r)`, sized for the largest adapted layer), are shared by all layers;
    each layer trains only the scales `randlora_lambda [r, n]` and `randlora_gamma [n, min(in, out)]`.
    The `n` rank-`r` bases together reach full rank. Smaller `r` means more trainable parameters.

    - `projection_prng_key`: seed of the CPU generator drawing the bases.
    - `save_projection`: save the bases with the adapter (default) or regenerate them from the key.
    - `sparse` / `very_sparse`: ternary (−1, 0, 1) bases with zero probability 2/3, or 1 − 1/√min_dim.
    - `randlora_alpha`: scaling numerator (`alpha / r`), typically 20·r.
    - `bias`: `"none"`, `"all"` or `"randlora_only"`.
    """

    peft_type: str = "RANDLORA"
    r: int = field(default=32, metadata={"help": "Rank of each random basis (fewer bases when larger)."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    projection_prng_key: int = field(default=0, metadata={"help": "Seed of the generator drawing the bases."})
    save_projection: bool = field(default=True, metadata={"help": "Save the bases (else regenerate them on load)."})
    sparse: bool = field(default=False, metadata={"help": "Ternary sparse bases (zero with probability 2/3)."})
    very_sparse: bool = field(default=False, metadata={"help": "Very sparse ternary bases (1 - 1/sqrt(min_dim) zeros)."})
    randlora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    fan_in_fan_out: bool = field(default=False, metadata={"help": "Weights stored (in, out) (GPT-2 Conv1D); set automatically."})
    randlora_alpha: Union[int, float] = field(default=640, metadata={"help": "Scaling numerator: alpha / r."})
    bias: str = field(default="none", metadata={"help": "'none', 'all' or 'randlora_only'."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    init_weights: bool = field(default=True, metadata={"help": "True: lambda = 0 (no-op); False: random (tests)."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[str] = field(default=None, metadata={"help": "Layer list name."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'randlora_only', got {self.bias!r}.")
        if isinstance(self.projection_prng_key, bool) or not isinstance(self.projection_prng_key, int):
            raise ConfigError(f"{name}.projection_prng_key must be an integer, got {self.projection_prng_key!r}.")
        if not self.save_projection:
            warnings.warn(
                "RandLoraConfig.save_projection=False: randlora_A and randlora_B are not saved; they are regenerated "
                "from projection_prng_key with a CPU torch.Generator when the adapter is loaded, which may not be "
                "reproducible across platforms or torch versions. Keep save_projection=True to be safe.",
                UserWarning,
                stacklevel=3,
            )
