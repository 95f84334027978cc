"""Fixtures for peft-loha's own tests: the kit's tiny Llama and the package's grouped-conv model
(`peft_loha.conformance.GROUPED_CONV`), fresh on every call."""

from __future__ import annotations

import pytest
import torch

from peft_core.testing.models import make_llama as _make_llama
from peft_loha.conformance import CONV_TARGETS, GroupedConvNet


def _seeded(factory, seed: int = 0):
    torch.manual_seed(seed)
    return factory().eval()


@pytest.fixture
def make_llama():
    """Factory: the same tiny Llama (same weights) on every call with the same seed."""
    return lambda seed=0: _seeded(_make_llama, seed)


@pytest.fixture
def make_convnet():
    return lambda seed=0: _seeded(GroupedConvNet, seed)


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
