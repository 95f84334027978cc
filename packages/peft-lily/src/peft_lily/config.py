"""`LilyConfig`: Hugging Face PEFT's Lily config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields, check_bools, check_numbers
from peft_core.tuners.matching import check_layer_selection


@dataclass
class LilyConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
    """Lily: low-rank adapters interconnected across layers.

    Layers are grouped by the target name they matched (and their weight shape). Within a group,
    every `stride_A` consecutive layers share one projector `A [r, in]`, and all layers share
    `num_B` up-projections `B_e [r, out]`; a per-layer router mixes the `B_e` with softmax weights
    averaged over the batch's tokens: `y = base(x) + scaling · (A x) Σ_e p_e B_e`.

    - `r`: width of the projections (larger than a LoRA rank is typical).
    - `stride_A` (>= 1): layers per shared `A`; `num_B` (>= 2): experts shared by the whole group.
    - `scaling`: a plain multiplier of the update (no alpha / r).
    - `init_weights`: True: `B = 0` (a no-op); False: random `B` (tests).
    """

    peft_type: str = "LILY"
    r: int = field(default=32, metadata={"help": "Width of the low-rank projections."})
    stride_A: int = field(default=1, metadata={"help": "Consecutive layers of a group sharing one A."})
    num_B: int = field(default=2, metadata={"help": "Number of B experts shared by a group (>= 2)."})
    scaling: float = field(default=1.0, metadata={"help": "Multiplier of the update."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (no-op); False: random B (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for count, least in (("stride_A", 1), ("num_B", 2)):
            value = getattr(self, count)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{name}.{count} must be an integer >= {least}, got {value!r}.")
        check_numbers(self, "scaling")
        check_bools(self, "init_weights")
        check_layer_selection(self, regex_excludes_layers=False)
