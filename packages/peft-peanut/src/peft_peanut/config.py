"""`PeanutConfig`: Hugging Face PEFT's PEANuT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields
from peft_core.tuners.matching import check_layer_selection

from .activations import unknown_activation


@dataclass
class PeanutConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
    """PEANuT: a weight-aware update computed by a small network from the frozen weight itself.

    `ΔW = scaling · (B(f(…f(W A ᵀ)…)))ᵀ`: `A` maps each input column of `W` (its `out` entries) to `r`,
    then `depth` encoder and `depth` decoder layers (`r → r`, with residual connections between
    matching encoder and decoder depths), then `B` maps back to `out`; `f` is `act_fn`.

    - `r`: hidden width; `depth`: encoder/decoder layers per side (0: only `A` and `B`).
    - `act_fn`: an activation name of transformers' `ACT2FN` (`"relu"`, `"gelu"`, `"silu"` ...).
    - `scaling`: multiplies the update; `init_weights`: True: `B = 0` (a no-op start); False: random `B`.
    """

    peft_type: str = "PEANUT"
    r: int = field(default=32, metadata={"help": "Hidden width of the adapter network."})
    depth: int = field(default=0, metadata={"help": "Encoder and decoder layers per side (besides A and B)."})
    act_fn: str = field(default="relu", metadata={"help": "Activation (a transformers ACT2FN name)."})
    scaling: float = field(default=1.0, metadata={"help": "Multiplies the update."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (no-op); False: random B."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_layer_selection(self, regex_excludes_layers=False)
        if self.depth < 0:
            raise ConfigError(f"{name}.depth must be a non-negative integer, got {self.depth!r}.")
        problem = unknown_activation(self.act_fn)
        if problem:
            raise ConfigError(f"{name}: {problem}")
