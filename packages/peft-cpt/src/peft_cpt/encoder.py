"""`CPTEmbedding`: the context's token embeddings plus a trained correction kept inside a ball.

`embedding` holds the (frozen) embeddings of `cpt_token_ids`; `delta_embedding` the correction, trained
by projected gradient descent: each forward pass in training mode first projects every row of the
stored correction onto its ball (radius ε from the token's type, scaled by `sqrt(token_dim / 2048)`),
as Hugging Face PEFT does. In evaluation the projection is applied to the output only, leaving the
stored tensor alone, so repeated evaluations (and saving) give identical values. Gradients reach only
template and input tokens. A loaded adapter holds the final rows in `embedding` and has no correction.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from peft_core import ConfigError
from peft_core.tuners.prompt_learning import PromptEncoderBase

from .config import CPTConfig

MIN_RADIUS = 1e-10  # label and untyped tokens: no correction


def correction_radius(config: CPTConfig) -> torch.Tensor:
    """Per context token, the radius of its correction (HF's float32 arithmetic)."""
    types = torch.tensor(config.cpt_tokens_type_mask, dtype=torch.long)
    scale = torch.sqrt(torch.Tensor([config.token_dim / 2048]))
    radius = torch.full((len(types),), MIN_RADIUS, dtype=torch.float32)
    typed = types > 0
    radius[typed & ((types % 4 == 1) | (types % 4 == 3))] = config.opt_projection_format_epsilon * scale
    radius[typed & (types % 4 == 2)] = config.opt_projection_epsilon * scale
    return radius


def project_rows(rows: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Each non-zero row scaled back onto its ball when it lies outside (`row * r / max(|row|, r)`)."""
    out = rows.clone()
    norms = torch.norm(out, p=2, dim=1)
    outside = norms > 0
    if torch.any(outside):
        r = radius.to(out.device)[outside]
        out[outside] *= (r / norms[outside].clamp(min=r)).view(-1, 1)
    return out


class CPTEmbedding(PromptEncoderBase):
    def __init__(self, config: CPTConfig, word_embeddings: nn.Module | None) -> None:
        super().__init__(config.num_virtual_tokens, config.token_dim)
        self.delta_embedding: nn.Embedding | None = None
        if config.inference_mode:
            return  # a loaded adapter: the file's rows go into `embedding`
        if word_embeddings is None:
            raise ValueError("CPT starts from the embeddings of cpt_token_ids, but the model has no input embeddings.")
        vocab = word_embeddings.weight.shape[0]
        if max(config.cpt_token_ids) >= vocab:
            raise ConfigError(f"cpt_token_ids holds ids beyond the model's vocabulary of {vocab} tokens: {config.cpt_token_ids}.")
        ids = torch.tensor(config.cpt_token_ids, dtype=torch.long, device=word_embeddings.weight.device)
        with torch.no_grad():
            rows = word_embeddings(ids).detach().clone().to(torch.float32)
        self.embedding.weight = nn.Parameter(rows)
        self.embedding.requires_grad_(False)
        self.delta_embedding = nn.Embedding(config.num_virtual_tokens, config.token_dim)
        with torch.no_grad():
            self.delta_embedding.weight.data = torch.zeros_like(self.delta_embedding.weight, dtype=torch.float32)
        types = torch.tensor(config.cpt_tokens_type_mask, dtype=torch.long) % 4
        self.register_buffer("trained_rows", (types == 1) | (types == 2) | (types == 3), persistent=False)
        self.register_buffer("radius", correction_radius(config), persistent=False)

    @property
    def reparameterized(self) -> bool:
        return self.delta_embedding is not None

    def projected_delta(self) -> torch.Tensor:
        with torch.no_grad():
            return project_rows(self.delta_embedding.weight, self.radius)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if self.delta_embedding is None:
            return self.embedding(indices)
        with torch.no_grad():
            base = self.embedding(indices)
        weight = self.delta_embedding.weight
        if self.training:  # projected gradient descent: the stored correction stays in its balls
            weight.data = self.projected_delta()
        else:
            weight = self.projected_delta() + (weight - weight.detach())  # the projected values (exactly), no side effect
        trained = self.trained_rows.to(weight.device).unsqueeze(-1)
        weight = torch.where(trained, weight, weight.detach())  # gradients for template and input tokens only
        return base + nn.functional.embedding(indices, weight)

    def load_prompt_matrix(self, matrix: torch.Tensor) -> None:
        """Saved rows become the context (`embedding`) and the correction restarts at zero, so the output is the
        saved matrix; Hugging Face PEFT also loads them into `embedding` (its correction is zero in a new adapter)."""
        if self.delta_embedding is None:
            super().load_prompt_matrix(matrix)
            return
        self.delta_embedding, delta = None, self.delta_embedding
        try:
            super().load_prompt_matrix(matrix)
        finally:
            self.delta_embedding = delta
        with torch.no_grad():
            delta.weight.zero_()

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Only the correction trains; the context's embeddings stay as they are (as in HF)."""
        return iter(()) if self.delta_embedding is None else self.delta_embedding.parameters()
