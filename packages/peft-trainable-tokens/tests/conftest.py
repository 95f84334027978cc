"""peft-trainable-tokens test setup: tiny random transformers models from `_tt_helpers.py` (no downloads)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import peft_trainable_tokens  # noqa: E402,F401  (registers the method)
from _tt_helpers import tiny_gpt2, tiny_llama  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def llama():
    """A factory: `llama(tied=False)` returns a fresh tiny Llama."""
    return tiny_llama


@pytest.fixture
def gpt2():
    return tiny_gpt2


@pytest.fixture
def ids():
    """Input ids that use the trained rows (3, 5, 7) and others."""
    return torch.tensor([[1, 3, 5, 9, 7, 2], [7, 7, 4, 3, 11, 5]])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
