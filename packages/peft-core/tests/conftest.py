"""Fixtures for peft-core's tests: a toy method (tests/_support/peft_toy) and tiny models."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import nn

SUPPORT = os.path.join(os.path.dirname(__file__), "_support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

import peft_toy  # noqa: E402  (registers the "toy" method)
from core_test_models import MLP, make_tiny_llama  # noqa: E402


@pytest.fixture
def toy():
    return peft_toy


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return MLP()


@pytest.fixture
def tiny_llama():
    return make_tiny_llama()


@pytest.fixture
def input_ids():
    torch.manual_seed(1)
    return torch.randint(0, 128, (2, 7))
