"""`PromptLearningConfig`: the fields every prompt-learning config shares (see `tuners.prompt_learning`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..config import PeftConfig
from ..errors import ConfigError


@dataclass
class PromptLearningConfig(PeftConfig):
    """Fields shared by prompt-learning configs (Hugging Face PEFT's `PromptLearningConfig`).

    `token_dim`, `num_transformer_submodules`, `num_attention_heads` and `num_layers` are filled from
    the base model's config when the adapter is created, and saved.
    """

    num_virtual_tokens: Optional[int] = field(default=None, metadata={"help": "Number of virtual tokens."})
    token_dim: Optional[int] = field(default=None, metadata={"help": "Hidden size of the base model."})
    num_transformer_submodules: Optional[int] = field(
        default=None, metadata={"help": "Number of transformer stacks (2 for encoder-decoder seq2seq)."}
    )
    num_attention_heads: Optional[int] = field(default=None, metadata={"help": "Number of attention heads."})
    num_layers: Optional[int] = field(default=None, metadata={"help": "Number of transformer layers."})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules (e.g. a classifier head) trained in full and saved."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_virtual_tokens is not None and self.num_virtual_tokens <= 0:
            raise ConfigError(f"num_virtual_tokens must be a positive integer, got {self.num_virtual_tokens}.")

    @property
    def is_prompt_learning(self) -> bool:
        return True

