"""`TrainableTokensConfig`: Hugging Face PEFT's trainable-tokens config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class TrainableTokensConfig(PeftConfig):
    """Train some rows of an embedding (new or changed tokens) and nothing else.

    - `token_indices`: the rows to train (e.g. the ids of tokens added to the tokenizer).
    - `target_modules`: the embedding layer(s): names/suffixes (list) or a regex (str); None picks the
      model's input embedding (`get_input_embeddings()`), else a module called `embed_tokens`.
    - `init_weights`: True (default) starts from the current rows, so the adapter is a no-op until
      trained; False starts from random rows (for tests).

    Layers tied to the input embedding (an LM head sharing its weight) follow the trained rows.
    """

    peft_type: str = "TRAINABLE_TOKENS"
    token_indices: list[int] = field(
        default_factory=list, metadata={"help": "Indices (rows) of the tokens to train."}
    )
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Embedding layer(s) to adapt: names/suffixes or a regex. None: the input embedding."},
    )
    init_weights: bool = field(
        default=True, metadata={"help": "Start from the current rows (a no-op); False: random rows."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_token_ids(self.token_indices, f"{type(self).__name__}.token_indices")


def check_token_ids(indices: object, what: str) -> None:
    """Token indices are a list of distinct non-negative integers (the range is checked on the layer)."""
    if not isinstance(indices, (list, tuple)) or any(isinstance(i, bool) or not isinstance(i, int) for i in indices):
        raise ConfigError(f"{what} must be a list of integer token ids, got {indices!r}.")
    negative = [i for i in indices if i < 0]
    if negative:
        raise ConfigError(f"{what} holds negative token ids {negative}; use row numbers of the embedding (0, 1, ...).")
    if len(set(indices)) != len(indices):
        duplicates = sorted({i for i in indices if list(indices).count(i) > 1})
        raise ConfigError(f"{what} lists token ids {duplicates} more than once; list each row once.")
