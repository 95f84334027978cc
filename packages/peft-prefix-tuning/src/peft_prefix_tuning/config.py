"""`PrefixTuningConfig`: Hugging Face PEFT's prefix-tuning config, field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from peft_core import ConfigError
from peft_core.tuners.prompt_learning import PromptLearningConfig


@dataclass
class PrefixTuningConfig(PromptLearningConfig):
    peft_type: str = "PREFIX_TUNING"
    init_weights: Optional[Literal["zero"]] = field(
        default=None, metadata={"help": "None: random prefixes; 'zero': zero prefixes (a no-op start)."}
    )
    encoder_hidden_size: Optional[int] = field(
        default=None, metadata={"help": "Hidden size of the projection MLP (default: token_dim)."}
    )
    prefix_projection: bool = field(default=False, metadata={"help": "Produce the prefixes with a trained MLP."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_weights not in (None, "zero"):
            raise ConfigError(f"init_weights must be None or 'zero', got {self.init_weights!r}.")
        if self.encoder_hidden_size is not None and self.encoder_hidden_size <= 0:
            raise ConfigError(f"encoder_hidden_size must be a positive integer or None, got {self.encoder_hidden_size}.")
