"""`UniLoraConfig`: Hugging Face PEFT's Uni-LoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class UniLoraConfig(PeftConfig):
    """Uni-LoRA: every LoRA factor entry of every adapted layer is read from one shared trained vector.

    Each targeted layer has LoRA factors `A [r, in]` and `B [out, r]` whose entries are
    `θ[index] · scale`: the indices are a fixed, balanced assignment drawn from `proj_seed` over all
    layers together, and `scale = 1/√(how often θ[index] is used)`. Only `θ` (`theta_d_length`
    values) is trained and saved; the indices are regenerated on load unless `save_indices`.

    - `init_weights`: True: `θ ~ U(−init_theta_d_bound, init_theta_d_bound)`; False: `θ ~ N(0, 1)`.
    - `bias`: `"none"`, `"all"` or `"unilora_only"`.
    """

    peft_type: str = "UNILORA"
    r: int = field(default=4, metadata={"help": "Rank of the LoRA factors."})
    proj_seed: int = field(default=42, metadata={"help": "Seed of the index assignment."})
    theta_d_length: int = field(default=256, metadata={"help": "Length of the shared trained vector theta_d."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    unilora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    fan_in_fan_out: bool = field(default=False, metadata={"help": "Weights stored (in, out) (GPT-2 Conv1D); set automatically."})
    bias: str = field(default="none", metadata={"help": "'none', 'all' or 'unilora_only'."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    init_theta_d_bound: float = field(default=0.02, metadata={"help": "theta_d starts uniform in [-bound, bound]."})
    init_weights: bool = field(default=True, metadata={"help": "True: small uniform theta_d; False: theta_d ~ N(0, 1)."})
    save_indices: bool = field(default=False, metadata={"help": "Also save the indices and scales of every layer."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer list name."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()  # r > 0, 0 <= unilora_dropout < 1
        name = type(self).__name__
        if self.theta_d_length <= 0:
            raise ConfigError(f"{name}.theta_d_length must be a positive integer, got {self.theta_d_length!r}.")
        if self.init_theta_d_bound <= 0:
            raise ConfigError(f"{name}.init_theta_d_bound must be positive, got {self.init_theta_d_bound!r}.")
        if self.bias not in ("none", "all", "unilora_only"):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'unilora_only', got {self.bias!r}.")
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ConfigError(f"{name}: layers_to_transform cannot be used when target_modules is a str (a regex).")
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ConfigError(f"{name}: layers_pattern cannot be used when target_modules is a str (a regex).")
