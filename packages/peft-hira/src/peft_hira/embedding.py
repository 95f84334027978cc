"""`HiraEmbedding`: HiRA on `nn.Embedding`.

Per adapter `hira_embedding_A [r, num_embeddings]` and `hira_embedding_B [embedding_dim, r]`; the
update looks up rows of `W ⊙ (B A)ᵀ` (a plain lookup, as in Hugging Face PEFT: the base layer's
`padding_idx` / `max_norm` apply to the base term only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layer import HiraLayer


class HiraEmbedding(HiraLayer):
    def __init__(self, base_layer: nn.Embedding) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        self.in_features, self.out_features = base.num_embeddings, base.embedding_dim

    def _factors(self, adapter_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hira_embedding_A[adapter_name], self.hira_embedding_B[adapter_name]

    def _holds(self, adapter_name: str) -> bool:
        return adapter_name in self.hira_embedding_A

    def update_layer(self, adapter_name: str, r: int, dropout: float, init_weights: object) -> None:
        self._add_common(adapter_name, r, dropout)
        a = torch.randn((r, self.in_features))
        b = torch.randn((self.out_features, r))
        if init_weights:  # HF: A = 0, B ~ N(0, 1) for every non-random init
            with torch.no_grad():
                nn.init.zeros_(a)
                nn.init.normal_(b)
        self.hira_embedding_A[adapter_name] = nn.Parameter(a)
        self.hira_embedding_B[adapter_name] = nn.Parameter(b)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _delta_from(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """ΔH = (B A)ᵀ, shaped like the embedding weight `[num_embeddings, embedding_dim]`."""
        return (b @ a).T

    def _update_output(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        a, b = self._factors(adapter_name)
        modulated = self.get_base_layer().weight * torch.mm(b, a).T
        return F.embedding(x, modulated)
