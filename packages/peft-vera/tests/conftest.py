"""Fixtures for peft-vera's own tests: the kit's tiny models (fresh copies) and "as if trained" vectors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peft_core.testing.fixtures import input_ids, mlp, saved_weights, tiny_gpt2, tiny_llama  # noqa: F401


@pytest.fixture
def randomize():
    def randomize_vera(model: nn.Module, seed: int = 3) -> None:
        """Give every VeRA vector a non-trivial value, whichever library built the model."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in sorted(model.named_parameters()):  # sorted: same values in both libraries
                if ".vera_lambda_" in name:
                    param.copy_(0.5 * torch.randn(param.shape, generator=gen))

    return randomize_vera
