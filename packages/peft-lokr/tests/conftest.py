"""Fixtures for peft-lokr's own tests: the kit's tiny Llama and the package's layers-that-factorise
model (`peft_lokr.conformance.KRON_NET`), fresh copies with the same weights on every call."""

from __future__ import annotations

import pytest
import torch

from peft_core.testing import models
from peft_lokr.conformance import KRON_NET, KRON_TARGETS


@pytest.fixture
def llama_factory():
    return models.LLAMA.build


@pytest.fixture
def kronnet_factory():
    return KRON_NET.build


@pytest.fixture
def kron_targets():
    return list(KRON_TARGETS)


@pytest.fixture
def token_ids():
    return models.LLAMA.make_inputs()["input_ids"]


@pytest.fixture
def feature_maps():
    torch.manual_seed(2)
    return torch.randn(3, 4, 4, 4)
