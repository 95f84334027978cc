"""`CartridgeEncoder`: the cache prefix as two parameters, frozen leading rows and trained rows.

The matrix the model sees (and the file's `prompt_embeddings`) is `cat([frozen, trainable])`,
`[num_virtual_tokens, num_layers · 2 · token_dim]`: prefix tuning's layout (row block `2l` is layer
`l`'s key prefix, `2l + 1` its value prefix). `requires_grad_` never makes the frozen rows trainable.
"""

from __future__ import annotations

import torch
from torch import nn

from peft_core import AdapterLoadError
from peft_core.tuners.prompt_learning import PromptEncoderBase

from .config import CartridgeConfig


class CartridgeEncoder(PromptEncoderBase):
    def __init__(self, config: CartridgeConfig) -> None:
        nn.Module.__init__(self)  # no lookup table: the rows are the parameters themselves
        width = config.num_layers * 2 * config.token_dim
        frozen = int(config.num_frozen_tokens)
        if not 0 <= frozen <= config.num_virtual_tokens:
            raise AdapterLoadError(
                f"num_frozen_tokens must be in [0, num_virtual_tokens={config.num_virtual_tokens}], got {frozen}."
            )
        self.num_frozen_tokens = frozen
        self.num_trainable_tokens = config.num_virtual_tokens - frozen
        # drawn in Hugging Face PEFT's order (frozen rows first), N(0, 1) like an nn.Embedding
        self.frozen_embedding = nn.Parameter(torch.empty(frozen, width).normal_(), requires_grad=False) if frozen else None
        self.trainable_embedding = nn.Parameter(torch.empty(self.num_trainable_tokens, width).normal_())

    @property
    def num_tokens(self) -> int:
        return self.num_frozen_tokens + self.num_trainable_tokens

    def requires_grad_(self, requires_grad: bool = True) -> CartridgeEncoder:
        self.trainable_embedding.requires_grad_(requires_grad)
        return self

    def prompt_matrix(self) -> torch.Tensor:
        if self.frozen_embedding is None:
            return self.trainable_embedding
        return torch.cat([self.frozen_embedding, self.trainable_embedding], dim=0)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.prompt_matrix().unsqueeze(0).expand(indices.shape[0], -1, -1)

    def load_prompt_matrix(self, matrix: torch.Tensor) -> None:
        """Split a saved matrix into the frozen and the trained rows."""
        expected = (self.num_tokens, self.trainable_embedding.shape[1])
        if tuple(matrix.shape) != expected:
            raise AdapterLoadError(
                f"prompt_embeddings has shape {tuple(matrix.shape)} but the cartridge expects {expected}; it was saved "
                f"for another base model or num_virtual_tokens."
            )
        with torch.no_grad():
            if self.frozen_embedding is not None:
                self.frozen_embedding.copy_(matrix[: self.num_frozen_tokens].to(self.frozen_embedding.device))
            self.trainable_embedding.copy_(matrix[self.num_frozen_tokens :].to(self.trainable_embedding.device))
