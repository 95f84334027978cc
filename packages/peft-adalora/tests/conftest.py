"""peft-adalora test setup: helpers from `_adalora_helpers.py` (the kit's tiny random models; no downloads)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# pytest's importlib import mode puts no test folder on sys.path; the tests import _adalora_helpers
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def trained_ours():
    """peft-adalora trained through a whole 20-step schedule on the tiny Llama: (model, kept ranks per step)."""
    import peft_core
    from _adalora_helpers import tiny_llama, train_schedule

    from peft_adalora import AdaLoraConfig

    return train_schedule(peft_core, AdaLoraConfig, tiny_llama(), target_modules=["q_proj", "v_proj"])
