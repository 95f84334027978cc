"""LN tuning's cases for peft-core's conformance kit (`python -m peft_core.testing ln_tuning`)."""

from __future__ import annotations

import torch
from torch import nn

from peft_core.testing import Conformance, TinyModel, models, on

from .config import LNTuningConfig


def _norms_mlp() -> nn.Module:
    """Linear layers with a LayerNorm after each of the first two (weights and biases)."""
    return models.LayerStack(
        lin0=nn.Linear(8, 16), norm0=nn.LayerNorm(16), lin1=nn.Linear(16, 16), norm1=nn.LayerNorm(16), head=nn.Linear(16, 4)
    )


NORMS_MLP = TinyModel("norms-mlp", _norms_mlp, lambda: {"x": torch.randn(4, 8)}, targets=("norm0", "norm1"))


def conformance() -> Conformance:
    return Conformance.of(
        LNTuningConfig,
        on(NORMS_MLP, "mlp-extras", modules_to_save=["head"], second=dict(target_modules=["norm1"])),
        # targeted embeddings also save their base weight (`<emb>.base_layer.weight`), as in HF
        on(
            models.LLAMA, "llama-embeddings", target_modules=["embed_tokens", "lm_head", "norm"],
            second=dict(target_modules=["post_attention_layernorm"]),
        ),
        on(models.GPT2, "gpt2-defaults", target_modules=None),
        autocast=False,  # the copies keep the base's dtype, as in Hugging Face PEFT
        hf=True,
    )
