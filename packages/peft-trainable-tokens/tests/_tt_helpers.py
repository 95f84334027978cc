"""Tiny random transformers models (the conformance kit's) and helpers for peft-trainable-tokens' tests
(put on sys.path by conftest.py)."""

from __future__ import annotations

import torch
from peft_core.testing import models
from peft_core.testing.models import VOCAB

__all__ = ["VOCAB", "logits", "perturb", "tiny_gpt2", "tiny_llama"]


def tiny_llama(tied: bool = False):
    """A fresh tiny Llama (hidden size 32), its LM head tied to the input embedding when `tied`."""
    return (models.LLAMA_TIED if tied else models.LLAMA).build()


def tiny_gpt2():
    return models.GPT2.build()


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def perturb(model, seed: int) -> None:
    """Give every trainable tensor random values, as if trained."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=g) * 0.5)
