"""`CPTConfig`: Hugging Face PEFT's CPT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from peft_core import ConfigError
from peft_core.tuners.prompt_learning import PromptLearningConfig


@dataclass
class CPTConfig(PromptLearningConfig):
    """Context-aware prompt tuning: the virtual tokens are the embeddings of a few-shot context
    (`cpt_token_ids`) plus a trained correction kept inside a small ball per token, and a loss over the
    label tokens of the context and of the input.

    `cpt_tokens_type_mask` gives each context token a type: `4k+1` input template, `4k+2` input,
    `4k+3` output template, `4k+4` label of example `k` (0: none). Only template and input tokens are
    corrected; label tokens count in the loss. Causal language models only.
    """

    peft_type: str = "CPT"
    cpt_token_ids: Optional[list[int]] = field(default=None, metadata={"help": "Token ids of the context (default [0])."})
    cpt_mask: Optional[list[int]] = field(default=None, metadata={"help": "Mask of the context tokens (stored, unused)."})
    cpt_tokens_type_mask: Optional[list[int]] = field(default=None, metadata={"help": "Type of each context token."})
    opt_weighted_loss_type: Optional[Literal["none", "decay"]] = field(
        default="none", metadata={"help": "'decay': earlier examples' labels weigh less in the loss."}
    )
    opt_loss_decay_factor: Optional[float] = field(default=1.0, metadata={"help": "Weight factor per earlier example."})
    opt_projection_epsilon: Optional[float] = field(default=0.1, metadata={"help": "Radius of input tokens' correction."})
    opt_projection_format_epsilon: Optional[float] = field(
        default=0.1, metadata={"help": "Radius of template tokens' correction."}
    )
    tokenizer_name_or_path: Optional[str] = field(default=None, metadata={"help": "Tokenizer of the context (informational)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.task_type != "CAUSAL_LM":
            raise ConfigError(f"{name} only supports task_type='CAUSAL_LM', got {self.task_type!r}.")
        if self.cpt_token_ids is None:
            self.cpt_token_ids = [0]
        if not self.cpt_token_ids or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in self.cpt_token_ids):
            raise ConfigError(f"{name}.cpt_token_ids must be a non-empty list of token ids (>= 0), got {self.cpt_token_ids!r}.")
        self.num_virtual_tokens = len(self.cpt_token_ids)
        self.num_transformer_submodules = 1
        if self.cpt_mask is None:
            self.cpt_mask = [1] * len(self.cpt_token_ids)
        if self.cpt_tokens_type_mask is None:
            self.cpt_tokens_type_mask = [1] * len(self.cpt_token_ids)
        if not len(self.cpt_token_ids) == len(self.cpt_mask) == len(self.cpt_tokens_type_mask):
            raise ConfigError(f"{name}: cpt_token_ids, cpt_mask and cpt_tokens_type_mask must have the same length.")
        if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in self.cpt_tokens_type_mask):
            raise ConfigError(f"{name}.cpt_tokens_type_mask holds token types (integers >= 0), got {self.cpt_tokens_type_mask!r}.")
        if self.opt_weighted_loss_type not in ("none", "decay"):
            raise ConfigError(f"{name}.opt_weighted_loss_type must be 'none' or 'decay', got {self.opt_weighted_loss_type!r}.")
        for attr in ("opt_projection_epsilon", "opt_projection_format_epsilon"):
            value = getattr(self, attr)
            if value is None or not 0 <= value < float("inf"):
                raise ConfigError(f"{name}.{attr} is the radius of a token's correction: a number >= 0, got {value!r}.")
        factor = self.opt_loss_decay_factor
        if factor is None or not 0 < factor < float("inf"):
            raise ConfigError(f"{name}.opt_loss_decay_factor must be a positive number, got {factor!r}.")
