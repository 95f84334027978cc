"""`AdaptionPromptConfig`: Hugging Face PEFT's adaption prompt (LLaMA-Adapter) config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError, PeftConfig


@dataclass
class AdaptionPromptConfig(PeftConfig):
    """LLaMA-Adapter: in each of the top `adapter_layers` attention modules, the queries also attend to
    `adapter_len` learned prompt tokens; that extra attention output is scaled by a learned gate that
    starts at zero, so a fresh adapter changes nothing.

    `target_modules` is the *name* of the attention modules (`"self_attn"` for Llama / Mistral, `"attn"`
    for GPT-2; filled in from the model type when None), not a list or a regex.
    """

    peft_type: str = "ADAPTION_PROMPT"
    target_modules: Optional[str] = field(
        default=None, metadata={"help": "Name of the attention submodules (None: the model type's)."}
    )
    adapter_len: Optional[int] = field(default=None, metadata={"help": "Number of adaption prompt tokens per layer."})
    adapter_layers: Optional[int] = field(default=None, metadata={"help": "Number of adapted layers, from the top."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for attr in ("adapter_len", "adapter_layers"):
            value = getattr(self, attr)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name}.{attr} must be a positive integer, got {value!r}.")
        if self.target_modules is not None and (not isinstance(self.target_modules, str) or not self.target_modules):
            raise ConfigError(f"{name}.target_modules is the name of the attention modules (e.g. 'self_attn'), got {self.target_modules!r}.")

    @property
    def is_adaption_prompt(self) -> bool:
        return True
