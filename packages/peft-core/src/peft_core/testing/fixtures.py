"""Pytest fixtures over the kit's tiny models, for method packages' own tests.

A package's conftest imports the ones its tests take (`from peft_core.testing.fixtures import
tiny_llama  # noqa: F401`); each gives a fresh copy with the same weights every time (`TinyModel.build`).
This module imports pytest; the rest of the kit does not need it.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn

from . import models
from .hf import saved_tensor_specs


@pytest.fixture
def tiny_llama() -> nn.Module:
    """`models.LLAMA`: a 2-layer Llama causal LM (hidden 32, vocabulary 128), eval mode."""
    return models.LLAMA.build()


@pytest.fixture
def tiny_gpt2() -> nn.Module:
    """`models.GPT2`: a 2-layer GPT-2 LM (transformers `Conv1D` layers, random biases), eval mode."""
    return models.GPT2.build()


@pytest.fixture
def make_llama() -> Callable[[], nn.Module]:
    """`models.LLAMA.build`, for tests that need several fresh copies with the same weights."""
    return models.LLAMA.build


@pytest.fixture
def mlp() -> nn.Module:
    """`models.MLP`: lin0 16->32, norm (LayerNorm 32), lin1 32->32, lin2 32->16, all with biases."""
    return models.MLP.build()


@pytest.fixture
def input_ids() -> torch.Tensor:
    """Token ids for the tiny Llama / GPT-2: 4 rows of 6."""
    return models.LLAMA.make_inputs()["input_ids"]


@pytest.fixture
def images() -> torch.Tensor:
    """Inputs for `models.GroupedConvModule` (LyCORIS methods' conv models): 3 rows of [4, 4, 4]."""
    torch.manual_seed(2)
    return torch.randn(3, 4, 4, 4)


@pytest.fixture
def saved_weights() -> Callable[..., dict]:
    """`hf.saved_tensor_specs`: key -> (shape, dtype) of a saved adapter folder's safetensors file."""
    return saved_tensor_specs
