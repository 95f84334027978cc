"""peft-hra test setup: tiny random models from `_hra_test_models.py` (no downloads)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import peft_hra  # noqa: E402,F401  (registers the "hra" method)

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
