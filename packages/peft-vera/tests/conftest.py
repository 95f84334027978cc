"""Fixtures for peft-vera's own tests: the kit's tiny models (fresh copies) and "as if trained" vectors."""

from __future__ import annotations

import pytest

from peft_core.testing.fixtures import input_ids, mlp, saved_weights, tiny_gpt2, tiny_llama  # noqa: F401
from peft_core.testing.trained import as_if_trained


@pytest.fixture
def randomize():
    """Give every VeRA vector a non-trivial value, whichever library built the model."""
    return as_if_trained(".vera_lambda_", scale=0.5)
