"""Fixtures for peft-lokr's own tests: the kit's tiny Llama and the package's layers-that-factorise
model (`peft_lokr.conformance.KRON_NET`), fresh on every call."""

from __future__ import annotations

import pytest
import torch

from peft_core.testing.models import make_llama
from peft_lokr.conformance import KRON_TARGETS, KronNet


def _llama(seed: int = 0):
    torch.manual_seed(seed)
    return make_llama().eval()


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
