"""Fixtures for peft-ln-tuning's own tests: fresh copies of the kit's tiny models and of the package's
two-norm module (`peft_ln_tuning.conformance.NORMS_MLP`), and file readers."""

from __future__ import annotations

import pytest
from torch import nn

from peft_core.testing.fixtures import input_ids, saved_weights, tiny_gpt2, tiny_llama  # noqa: F401
from peft_core.testing.trained import as_if_trained
from peft_ln_tuning.conformance import NORMS_MLP


@pytest.fixture
def mlp() -> nn.Module:
    """lin0 8->16, norm0, lin1 16->16, norm1, head 16->4."""
    return NORMS_MLP.build()


@pytest.fixture
def randomize():
    """Give every tuned copy non-trivial weights (1 ± noise) and biases, whichever library built the model."""
    return as_if_trained(".ln_tuning_layers.", scale=0.3, offset=lambda name: 1.0 if name.endswith("weight") else 0.0)
