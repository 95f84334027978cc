"""Fixtures for peft-lokr's own tests: the kit's tiny Llama and the package's layers-that-factorise
model (`peft_lokr.conformance.KRON_NET`), fresh copies with the same weights on every call."""

from __future__ import annotations

import pytest

from peft_core.testing.fixtures import images, make_llama  # noqa: F401
from peft_lokr.conformance import KRON_NET, KRON_TARGETS


@pytest.fixture
def kronnet_factory():
    return KRON_NET.build


@pytest.fixture
def kron_targets():
    return list(KRON_TARGETS)

