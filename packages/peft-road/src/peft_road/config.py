"""`RoadConfig`: Hugging Face PEFT's RoAd config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import TargetingFields

VARIANTS = ("road_1", "road_2", "road_4")


@dataclass
class RoadConfig(TargetingFields):
    """RoAd: rotate pairs of output features by learned angles and scales.

    - `variant`: `road_1` (one angle and scale per pair, `out/2` of each), `road_2` (per element,
      `out`), `road_4` (separate angle/scale for the two columns of each rotation, `2·out`).
    - `group_size`: output features are split into groups of this size; element `i` of a group is
      paired with element `i + group_size/2`. Even, and must divide every adapted layer's output size.
    - `init_weights`: True starts as the identity (angles 0, scales 1); False draws random values.
    """

    peft_type: str = "ROAD"
    variant: str = field(default="road_1", metadata={"help": "road_1, road_2 or road_4."})
    group_size: int = field(default=64, metadata={"help": "Size of the groups of paired output features (even)."})
    init_weights: bool = field(default=True, metadata={"help": "True: identity start; False: random (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise ConfigError(f"RoadConfig.variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}.")
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) or self.group_size <= 0:
            raise ConfigError(f"RoadConfig.group_size must be a positive even integer, got {self.group_size!r}.")
        if self.group_size % 2:
            raise ConfigError(
                f"RoadConfig.group_size must be even (features are paired within a group), got {self.group_size}."
            )
