"""`HiraConfig`: Hugging Face PEFT's HiRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields
from peft_core.tuners.matching import check_layer_selection


def is_gaussian(init_weights: object) -> bool:
    """HF compares the string case-insensitively."""
    return isinstance(init_weights, str) and init_weights.lower() == "gaussian"


@dataclass
class HiraConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """HiRA: a high-rank update `W ⊙ (B A)`, the Hadamard product of the frozen weight and a rank-r product.

    - `r`: rank of `B A` (the update itself is generally of much higher rank). `rank_pattern`
      (regex keys matched at the end of module names) overrides it only for a layer's second and
      later adapters: Hugging Face PEFT 0.21.2 creates every layer's first adapter with `r`, and
      its files have those shapes.
    - `init_weights`: True: `A` Kaiming-uniform, `B = 0` (a no-op); `"gaussian"`: `A ~ N(0, 1/r)`,
      `B = 0`; False: both N(0, 1) (tests). Embeddings start with `A = 0` and `B ~ N(0, 1)`.
    - `hira_dropout`, `fan_in_fan_out`, `target_modules`, `exclude_modules`, `modules_to_save`,
      `layers_to_transform`, `layers_pattern` as in LoRA. `fan_in_fan_out` is not rewritten in the
      saved config (HF leaves it as given); the layer type decides.
    """

    peft_type: str = "HIRA"
    r: int = field(default=32, metadata={"help": "Rank of B A."})
    hira_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    init_weights: Union[bool, Literal["gaussian"], None] = field(
        default=True, metadata={"help": "True: B = 0 (no-op); 'gaussian': A ~ N(0, 1/r), B = 0; False: random."}
    )
    rank_pattern: Optional[dict] = field(default_factory=dict, metadata={"help": "Per-module ranks (regex -> r)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not (self.init_weights is None or isinstance(self.init_weights, bool) or is_gaussian(self.init_weights)):
            raise ConfigError(f"{name}.init_weights must be True, False or 'gaussian', got {self.init_weights!r}.")
        check_layer_selection(self, pattern_needs_layers=False)
        if self.rank_pattern is not None:
            if not isinstance(self.rank_pattern, dict):
                raise ConfigError(f"{name}.rank_pattern must be a dict of regex -> rank, got {self.rank_pattern!r}.")
            for key, value in self.rank_pattern.items():
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ConfigError(f"{name}.rank_pattern[{key!r}] must be a positive integer rank, got {value!r}.")
