"""peft-adalora test setup: helpers from `_adalora_helpers.py` (the kit's tiny random models; no downloads)."""

from __future__ import annotations

import os
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import peft_adalora  # noqa: E402,F401  (registers the "adalora" method)

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def trained_ours():
    """peft-adalora trained through a whole 20-step schedule on the tiny Llama: (model, kept ranks per step)."""
    import peft_core
    from _adalora_helpers import tiny_llama, train_schedule

    return train_schedule(peft_core, peft_adalora.AdaLoraConfig, tiny_llama(), target_modules=["q_proj", "v_proj"])
