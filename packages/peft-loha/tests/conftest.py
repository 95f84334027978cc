"""Fixtures for peft-loha's own tests: the kit's tiny Llama and the package's grouped-conv model
(`peft_loha.conformance.GROUPED_CONV`), fresh copies with the same weights on every call."""

from __future__ import annotations

import pytest

from peft_core.testing.fixtures import images, input_ids, make_llama  # noqa: F401
from peft_loha.conformance import CONV_TARGETS, GROUPED_CONV


@pytest.fixture
def make_convnet():
    return GROUPED_CONV.build


@pytest.fixture
def conv_targets():
    return list(CONV_TARGETS)
