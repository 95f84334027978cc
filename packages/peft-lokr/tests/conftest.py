"""Fixtures for peft-lokr's tests: tiny models (built from configs, never downloaded) and inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class KronNet(nn.Module):
    """Layers whose sizes factorise in different ways: grouped 3x3 Conv2d, 1x1 Conv2d, Conv1d, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(4, 12, 3, padding=1, groups=2)  # out 12 = 3*4, in/groups 2 = 1*2
        self.point = nn.Conv2d(12, 8, 1)  # 8 = 2*4, 12 = 3*4
        self.conv1 = nn.Conv1d(8, 24, 3, padding=1)  # 24 = 4*6, 8 = 2*4
        self.lin = nn.Linear(24 * 16, 10)  # 10 = 2*5, 384 = 16*24

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.point(torch.relu(self.conv2(x))))  # [B, 8, 4, 4]
        h = torch.relu(self.conv1(h.flatten(2)))  # [B, 24, 16]
        return self.lin(h.flatten(1))


KRON_TARGETS = ["conv2", "point", "conv1", "lin"]


def _llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
        )
    ).eval()


def _kronnet(seed: int = 0) -> KronNet:
    torch.manual_seed(seed)
    return KronNet().eval()


@pytest.fixture
def llama_factory():
    """Builds the same tiny Llama (same weights) on every call."""
    return _llama


@pytest.fixture
def kronnet_factory():
    return _kronnet


@pytest.fixture
def kron_targets():
    return list(KRON_TARGETS)


@pytest.fixture
def token_ids():
    torch.manual_seed(1)
    return torch.randint(0, 128, (3, 6))


@pytest.fixture
def feature_maps():
    torch.manual_seed(2)
    return torch.randn(3, 4, 4, 4)
