"""Fixtures for peft-loha's tests: tiny models (built from configs, never downloaded) and inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class ConvNet(nn.Module):
    """Conv2d 3x3 (grouped), Conv2d 1x1, Conv1d k=3 and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.point = nn.Conv2d(6, 8, 1)
        self.conv1 = nn.Conv1d(8, 4, 3, padding=1)
        self.lin = nn.Linear(4 * 16, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.point(torch.relu(self.conv2(x))))  # [B, 8, 4, 4]
        h = torch.relu(self.conv1(h.flatten(2)))  # [B, 4, 16]
        return self.lin(h.flatten(1))


CONV_TARGETS = ["conv2", "point", "conv1", "lin"]


def _tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def _convnet(seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    return ConvNet().eval()


@pytest.fixture
def make_llama():
    """Factory: the same tiny Llama (same weights) on every call with the same seed."""
    return _tiny_llama


@pytest.fixture
def make_convnet():
    return _convnet


@pytest.fixture
def conv_targets():
    return list(CONV_TARGETS)


@pytest.fixture
def input_ids():
    torch.manual_seed(1)
    return torch.randint(0, 128, (3, 7))


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 4, 4, 4)
