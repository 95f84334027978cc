"""`PrefixEncoder`: the prefix matrix, optionally produced by a 2-layer MLP."""

from __future__ import annotations

import torch
from torch import nn

from peft_core.tuners.prompt_learning import PromptEncoderBase

from .config import PrefixTuningConfig


class PrefixEncoder(PromptEncoderBase):
    """Rows of `num_layers * 2 * token_dim` (a key and a value prefix per layer), one per virtual token.

    With `prefix_projection` (while training) the rows are `transform(embedding)`, where `embedding`
    has `token_dim` columns; a loaded adapter holds the final rows directly.
    """

    def __init__(self, config: PrefixTuningConfig) -> None:
        width = config.num_layers * 2 * config.token_dim
        project = config.prefix_projection and not config.inference_mode
        super().__init__(config.num_virtual_tokens, config.token_dim if project else width)
        self.transform: nn.Sequential | None = None
        if project:
            self.transform = nn.Sequential(
                nn.Linear(config.token_dim, config.encoder_hidden_size),
                nn.Tanh(),
                nn.Linear(config.encoder_hidden_size, width),
            )
            last = self.transform[-1]
        else:
            last = self.embedding
        if config.init_weights == "zero":
            with torch.no_grad():
                for param in last.parameters():
                    param.zero_()

    @property
    def reparameterized(self) -> bool:
        return self.transform is not None

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        rows = self.embedding(indices)
        return self.transform(rows) if self.transform is not None else rows
