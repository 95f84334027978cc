"""Tiny models for peft-core's tests (importable from any test file: _support is on sys.path)."""

from __future__ import annotations

import torch
from peft_core.testing import models
from torch import nn


class MLP(nn.Module):
    """A small custom model; module names include other methods' prefixes on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(8, 16)
        self.lora_proj = nn.Linear(16, 16)
        self.relu = nn.ReLU()
        self.lin1 = nn.Linear(16, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lin1(self.relu(self.lora_proj(self.lin0(x)))))


def make_tiny_llama(seed: int = 0):
    return models.make_llama(seed).eval()
