"""`UniLoraConfig`: Hugging Face PEFT's Uni-LoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field
from peft_core.tuners.matching import check_layer_selection


@dataclass
class UniLoraConfig(LayerSelectionFields, FanInFanOutField, TargetingFields):
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
    unilora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    bias: str = bias_field("unilora_only")
    init_theta_d_bound: float = field(default=0.02, metadata={"help": "theta_d starts uniform in [-bound, bound]."})
    init_weights: bool = field(default=True, metadata={"help": "True: small uniform theta_d; False: theta_d ~ N(0, 1)."})
    save_indices: bool = field(default=False, metadata={"help": "Also save the indices and scales of every layer."})

    def __post_init__(self) -> None:
        super().__post_init__()  # r > 0, 0 <= unilora_dropout < 1
        name = type(self).__name__
        if self.theta_d_length <= 0:
            raise ConfigError(f"{name}.theta_d_length must be a positive integer, got {self.theta_d_length!r}.")
        if self.init_theta_d_bound <= 0:
            raise ConfigError(f"{name}.init_theta_d_bound must be positive, got {self.init_theta_d_bound!r}.")
        if self.bias not in ("none", "all", "unilora_only"):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'unilora_only', got {self.bias!r}.")
        check_layer_selection(self, pattern_needs_layers=False)
