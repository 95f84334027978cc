"""Fixtures for peft-loha's own tests: the kit's tiny Llama and the package's grouped-conv model
(`peft_loha.conformance.GROUPED_CONV`), fresh copies with the same weights on every call."""

from __future__ import annotations

import pytest
import torch

from peft_core.testing import models
from peft_core.testing.fixtures import input_ids  # noqa: F401
from peft_loha.conformance import CONV_TARGETS, GROUPED_CONV


@pytest.fixture
def make_llama():
    return models.LLAMA.build


@pytest.fixture
def make_convnet():
    return GROUPED_CONV.build


@pytest.fixture
def conv_targets():
    return list(CONV_TARGETS)


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 4, 4, 4)
