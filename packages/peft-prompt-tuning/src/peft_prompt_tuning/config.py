"""`PromptTuningConfig`: Hugging Face PEFT's prompt-tuning config, field for field."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import coerce_choice
from peft_core.tuners.prompt_learning import PromptLearningConfig


class PromptTuningInit(enum.StrEnum):
    """How the virtual tokens start."""

    TEXT = "TEXT"
    SAMPLE_VOCAB = "SAMPLE_VOCAB"
    RANDOM = "RANDOM"


@dataclass
class PromptTuningConfig(PromptLearningConfig):
    peft_type: str = "PROMPT_TUNING"
    prompt_tuning_init: Union[PromptTuningInit, str] = field(
        default=PromptTuningInit.RANDOM,
        metadata={"help": "RANDOM, SAMPLE_VOCAB (embeddings of random tokens) or TEXT (embeddings of a text)."},
    )
    prompt_tuning_init_text: Optional[str] = field(
        default=None, metadata={"help": "Text whose token embeddings start the prompt (TEXT only)."}
    )
    tokenizer_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer for the TEXT initialisation."}
    )
    tokenizer_kwargs: Optional[dict] = field(
        default=None, metadata={"help": "Keyword arguments for AutoTokenizer.from_pretrained (TEXT only)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        coerce_choice(self, "prompt_tuning_init", PromptTuningInit)
        is_text = self.prompt_tuning_init is PromptTuningInit.TEXT
        if is_text and not self.tokenizer_name_or_path:
            raise ConfigError(
                f"prompt_tuning_init='TEXT' needs tokenizer_name_or_path, got {self.tokenizer_name_or_path!r}."
            )
        if is_text and self.prompt_tuning_init_text is None:
            raise ConfigError("prompt_tuning_init='TEXT' needs prompt_tuning_init_text.")
        if self.tokenizer_kwargs and not is_text:
            raise ConfigError("tokenizer_kwargs are only used with prompt_tuning_init='TEXT'.")
