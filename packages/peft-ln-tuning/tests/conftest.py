"""Fixtures for peft-ln-tuning's own tests: fresh copies of the kit's tiny models and of the package's
two-norm module (`peft_ln_tuning.conformance.NORMS_MLP`), and file readers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peft_core.testing.fixtures import input_ids, saved_weights, tiny_gpt2, tiny_llama  # noqa: F401
from peft_ln_tuning.conformance import NORMS_MLP


@pytest.fixture
def mlp() -> nn.Module:
    """lin0 8->16, norm0, lin1 16->16, norm1, head 16->4."""
    return NORMS_MLP.build()


@pytest.fixture
def randomize():
    def randomize_ln(model: nn.Module, seed: int = 3) -> None:
        """Give every tuned copy non-trivial weights (1 ± noise) and biases, whichever library built the model."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in sorted(model.named_parameters()):  # sorted: same values in both libraries
                if ".ln_tuning_layers." in name:
                    offset = 1.0 if name.endswith("weight") else 0.0
                    param.copy_(offset + 0.3 * torch.randn(param.shape, generator=gen))

    return randomize_ln
