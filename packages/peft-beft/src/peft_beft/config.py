"""`BeftConfig`: Hugging Face PEFT's BEFT config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class BeftConfig(PeftConfig):
    """BEFT trains one bias vector per adapted `nn.Linear`, added to the layer's output.

    - `target_modules`: names/suffixes (list) or a regex (str); None: HF's per-architecture default
      (the value projections, e.g. Llama `v_proj`).
    - `modules_to_save`: modules trained in full and saved with the adapter.
    - `init_weights`: True starts the biases at zero (a no-op); False leaves them N(0, 1) (tests).
    """

    peft_type: str = "BEFT"
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), or None (per-model default)."}
    )
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    init_weights: bool = field(default=True, metadata={"help": "True: zero biases (no-op); False: N(0, 1) (tests)."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.init_weights, bool):
            raise ConfigError(f"BeftConfig.init_weights must be True or False, got {self.init_weights!r}.")
