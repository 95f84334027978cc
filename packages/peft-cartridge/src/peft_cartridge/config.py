"""`CartridgeConfig`: Hugging Face PEFT's CARTRIDGE config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.tuners.prompt_learning import PromptLearningConfig


@dataclass
class CartridgeConfig(PromptLearningConfig):
    """CARTRIDGE: a trained key/value cache prefix, stored directly (no reparameterisation network).

    Served like prefix tuning (as the model's cache), it holds `num_virtual_tokens` rows of
    `num_layers · 2 · token_dim` values. The first `num_frozen_tokens` rows never train (the paper
    keeps the first token fixed as an attention sink). Start values are random N(0, 1), or taken from
    the base model's own cache over a text (`initialize_kv_prefix_from_text`).
    """

    peft_type: str = "CARTRIDGE"
    num_frozen_tokens: int = field(default=1, metadata={"help": "Leading virtual tokens kept frozen (attention sink)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.num_frozen_tokens < 0:
            raise ConfigError(f"{name}.num_frozen_tokens must be >= 0, got {self.num_frozen_tokens!r}.")
        if self.num_virtual_tokens is not None and self.num_frozen_tokens > self.num_virtual_tokens:
            raise ConfigError(
                f"{name}.num_frozen_tokens ({self.num_frozen_tokens}) must be <= num_virtual_tokens "
                f"({self.num_virtual_tokens})."
            )
