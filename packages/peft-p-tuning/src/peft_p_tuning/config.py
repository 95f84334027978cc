"""`PromptEncoderConfig`: Hugging Face PEFT's P-tuning config (peft type `P_TUNING`), field for field."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import coerce_choice
from peft_core.tuners.prompt_learning import PromptLearningConfig


class PromptEncoderReparameterizationType(enum.StrEnum):
    MLP = "MLP"
    LSTM = "LSTM"


@dataclass
class PromptEncoderConfig(PromptLearningConfig):
    peft_type: str = "P_TUNING"
    encoder_reparameterization_type: Union[str, PromptEncoderReparameterizationType] = field(
        default=PromptEncoderReparameterizationType.MLP,
        metadata={"help": "The prompt encoder: 'MLP' or 'LSTM'."},
    )
    encoder_hidden_size: Optional[int] = field(
        default=None, metadata={"help": "Hidden size of the prompt encoder (default: token_dim)."}
    )
    encoder_num_layers: int = field(default=2, metadata={"help": "LSTM layers (the MLP always has 3 linear layers)."})
    encoder_dropout: float = field(default=0.0, metadata={"help": "Dropout between LSTM layers."})

    def __post_init__(self) -> None:
        super().__post_init__()
        coerce_choice(self, "encoder_reparameterization_type", PromptEncoderReparameterizationType)
        if self.encoder_hidden_size is not None and self.encoder_hidden_size <= 0:
            raise ConfigError(f"encoder_hidden_size must be a positive integer or None, got {self.encoder_hidden_size}.")
        if self.encoder_num_layers <= 0:
            raise ConfigError(f"encoder_num_layers must be a positive integer, got {self.encoder_num_layers}.")
