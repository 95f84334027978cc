"""Fixtures for peft-fourierft's own tests: the kit's tiny models (fresh copies) and "as if trained"
spectra."""

from __future__ import annotations

import pytest

from peft_core.testing.fixtures import input_ids, mlp, saved_weights, tiny_gpt2, tiny_llama  # noqa: F401
from peft_core.testing.trained import as_if_trained


@pytest.fixture
def randomize():
    """Give every spectrum non-trivial values, whichever library built the model."""
    return as_if_trained(".fourierft_spectrum.")
