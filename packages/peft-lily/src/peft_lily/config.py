"""`LilyConfig`: Hugging Face PEFT's Lily config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class LilyConfig(PeftConfig):
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
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), or None (per-model default)."}
    )
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules never adapted."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices to adapt."})
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers') for layers_to_transform."}
    )
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (no-op); False: random B (tests)."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules", "exclude_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for count, least in (("stride_A", 1), ("num_B", 2)):
            value = getattr(self, count)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{name}.{count} must be an integer >= {least}, got {value!r}.")
        if isinstance(self.scaling, bool) or not isinstance(self.scaling, (int, float)):
            raise ConfigError(f"{name}.scaling must be a number, got {self.scaling!r}.")
        if not isinstance(self.init_weights, bool):
            raise ConfigError(f"{name}.init_weights must be True or False, got {self.init_weights!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
