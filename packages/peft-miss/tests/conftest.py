"""peft-miss test setup: tiny random models from `_miss_test_models.py` (no downloads)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import peft_miss  # noqa: E402,F401  (registers the "miss" method)

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
