"""Fixtures for peft-ia3's tests: small models of its own, the kit's transformers models and file readers."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from peft_core.testing import models
from peft_core.testing.hf import read_adapter_config, saved_tensor_specs
from peft_core.testing.trained import as_if_trained
from torch import nn

torch.set_num_threads(min(2, torch.get_num_threads()))


class ConvNet(nn.Module):
    """A small image model: plain, grouped and 1x1 Conv2d layers (with biases) and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.conv2 = nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6 * 5 * 5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv0(x))
        x = torch.relu(self.conv1(x))
        return self.head(self.conv2(x).flatten(1))


class Conv3dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv3d(2, 4, 3, padding=1)
        self.conv1 = nn.Conv3d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(torch.relu(self.conv0(x)))


@pytest.fixture
def tiny_llama():
    return models.LLAMA.build()


@pytest.fixture
def tiny_gpt2():
    return models.GPT2.build()


@pytest.fixture
def mlp():
    """Linear layers with biases (Llama has none), so output scaling of the bias is exercised."""
    torch.manual_seed(0)
    return models.LayerStack(lin0=nn.Linear(8, 16), lin1=nn.Linear(16, 16), lin2=nn.Linear(16, 4)).eval()


@pytest.fixture
def convnet():
    torch.manual_seed(0)
    return ConvNet().eval()


@pytest.fixture
def conv3dnet():
    torch.manual_seed(0)
    return Conv3dNet().eval()


@pytest.fixture
def input_ids():
    torch.manual_seed(1)
    return torch.randint(0, 128, (3, 7))


@pytest.fixture
def randomize() -> Callable[..., None]:
    """Give every (IA)³ vector a non-trivial value (1 ± noise), whichever library built the model."""
    return as_if_trained(".ia3_l.", scale=0.5, offset=1.0)


@pytest.fixture
def saved_config() -> Callable[[str], dict[str, Any]]:
    return read_adapter_config  # parsed; set fields as sets, the writer's version dropped


@pytest.fixture
def saved_weights() -> Callable[[str], dict[str, tuple[tuple[int, ...], torch.dtype]]]:
    return saved_tensor_specs
