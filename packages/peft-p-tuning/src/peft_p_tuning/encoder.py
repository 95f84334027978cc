"""`PromptEncoder`: learned embeddings passed through an MLP or a bidirectional LSTM."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from peft_core.tuners.prompt_learning import PromptEncoderBase

from .config import PromptEncoderConfig, PromptEncoderReparameterizationType

_MLP_LAYERS = 2  # the encoder_num_layers default; the MLP's depth is fixed


class PromptEncoder(PromptEncoderBase):
    """`num_virtual_tokens * num_transformer_submodules` virtual tokens of `token_dim`.

    While training, the output is `mlp_head(embedding)` (MLP) or `mlp_head(lstm_head(embedding))`
    (LSTM). A loaded adapter holds only `embedding`, with the saved output in it.
    """

    def __init__(self, config: PromptEncoderConfig) -> None:
        total = config.num_virtual_tokens * config.num_transformer_submodules
        super().__init__(total, config.token_dim)
        self.encoder_type = PromptEncoderReparameterizationType(config.encoder_reparameterization_type)
        self.lstm_head: nn.LSTM | None = None
        self.mlp_head: nn.Sequential | None = None
        if config.inference_mode:
            return
        dim, hidden = config.token_dim, config.encoder_hidden_size
        if self.encoder_type is PromptEncoderReparameterizationType.LSTM:
            self.lstm_head = nn.LSTM(
                input_size=dim,
                hidden_size=hidden,
                num_layers=config.encoder_num_layers,
                dropout=config.encoder_dropout,
                bidirectional=True,
                batch_first=True,
            )
            self.mlp_head = nn.Sequential(nn.Linear(hidden * 2, hidden * 2), nn.ReLU(), nn.Linear(hidden * 2, dim))
        else:
            if config.encoder_num_layers != _MLP_LAYERS:
                warnings.warn(
                    f"encoder_num_layers={config.encoder_num_layers} is ignored for the MLP encoder, which always has "
                    f"3 linear layers.",
                    UserWarning,
                    stacklevel=3,
                )
            self.mlp_head = nn.Sequential(
                nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim)
            )

    @property
    def reparameterized(self) -> bool:
        return self.mlp_head is not None

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        rows = self.embedding(indices)
        if self.mlp_head is None:
            return rows
        if self.lstm_head is not None:
            rows = self.lstm_head(rows)[0]
        return self.mlp_head(rows)
