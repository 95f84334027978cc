"""`BeftConfig`: Hugging Face PEFT's BEFT config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import TargetingFields


@dataclass
class BeftConfig(TargetingFields):
    """BEFT trains one bias vector per adapted `nn.Linear`, added to the layer's output.

    - `target_modules`: names/suffixes (list) or a regex (str); None: HF's per-architecture default
      (the value projections, e.g. Llama `v_proj`).
    - `modules_to_save`: modules trained in full and saved with the adapter.
    - `init_weights`: True starts the biases at zero (a no-op); False leaves them N(0, 1) (tests).
    """

    peft_type: str = "BEFT"
    init_weights: bool = field(default=True, metadata={"help": "True: zero biases (no-op); False: N(0, 1) (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.init_weights, bool):
            raise ConfigError(f"BeftConfig.init_weights must be True or False, got {self.init_weights!r}.")
