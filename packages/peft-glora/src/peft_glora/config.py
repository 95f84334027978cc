"""`GloraConfig`: Hugging Face PEFT's GLoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from peft_core import ConfigError
from peft_core.config_fields import TargetingFields, bias_field

WEIGHT_PATHS = ("lora", "vector", "constant", "none")
COUPLING_PATHS = ("lora", "vector", "none")
BIAS_PATHS = ("vector", "constant", "none")


@dataclass
class GloraConfig(TargetingFields):
    """GLoRA: a generalised update of both the weight and the bias of each targeted `nn.Linear`.

    `W' = W + W ⊙ A + B` and `b' = b + b ⊙ D + E + W C`. Each of `A`..`E` has its own shape
    ("path"): `"lora"` (a rank-`r` product), `"vector"` (one value per row), `"constant"` (one
    scalar) or `"none"` (zero, nothing trained). `C`, `D` and `E` exist only on layers with a bias.

    - `config_A_B`: path of `A` and `B`; `config_C`: path of `C`; `config_D_E`: path of `D` and `E`.
    - `init_weights`: True: every path starts at zero (a no-op); False: random (tests).
    - `bias`: `"none"`, `"all"` or `"glora_only"` (base biases trained and saved as well).
    """

    peft_type: str = "GLORA"
    r: int = field(default=8, metadata={"help": "Rank of the 'lora' paths."})
    bias: str = bias_field("glora_only")
    config_A_B: Literal["lora", "vector", "constant", "none"] = field(
        default="lora", metadata={"help": "Path of A (W ⊙ A) and B (added to W)."}
    )
    config_C: Literal["lora", "vector", "none"] = field(default="lora", metadata={"help": "Path of C (bias += W C)."})
    config_D_E: Literal["vector", "constant", "none"] = field(
        default="constant", metadata={"help": "Path of D (b ⊙ D) and E (added to b)."}
    )
    init_weights: bool = field(default=True, metadata={"help": "True: zero paths (no-op); False: random (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for attr, allowed in (("config_A_B", WEIGHT_PATHS), ("config_C", COUPLING_PATHS), ("config_D_E", BIAS_PATHS)):
            value = getattr(self, attr)
            if value not in allowed:
                raise ConfigError(f"{name}.{attr} must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
        if self.bias not in ("none", "all", "glora_only"):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'glora_only', got {self.bias!r}.")
