"""Fixtures for peft-ln-tuning's tests: tiny models (random weights, no downloads) and comparison helpers."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import pytest
import torch
from torch import nn

torch.set_num_threads(min(2, torch.get_num_threads()))

# Fields Hugging Face PEFT writes as (unordered) sets, and fields whose value names the writer.
SET_FIELDS = ("target_modules", "exclude_modules", "modules_to_save")
WRITER_FIELDS = ("peft_version",)


class MLP(nn.Module):
    """Linear layers with LayerNorms in between (weights and biases)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(8, 16)
        self.norm0 = nn.LayerNorm(16)
        self.lin1 = nn.Linear(16, 16)
        self.norm1 = nn.LayerNorm(16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm0(torch.relu(self.lin0(x)))
        return self.head(self.norm1(torch.relu(self.lin1(x))))


def make_tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def make_tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture
def tiny_llama():
    return make_tiny_llama()


@pytest.fixture
def tiny_gpt2():
    return make_tiny_gpt2()


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return MLP().eval()


@pytest.fixture
def input_ids():
    torch.manual_seed(1)
    return torch.randint(0, 128, (3, 7))


def randomize_ln(model: nn.Module, seed: int = 3) -> None:
    """Give every tuned copy non-trivial weights (1 ± noise) and biases, whichever library built the model."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):  # sorted: same values in both libraries
            if ".ln_tuning_layers." in name:
                offset = 1.0 if name.endswith("weight") else 0.0
                param.copy_(offset + 0.3 * torch.randn(param.shape, generator=gen))


@pytest.fixture
def randomize() -> Callable[..., None]:
    return randomize_ln


def read_config(path: str) -> dict[str, Any]:
    with open(os.path.join(path, "adapter_config.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    for key in SET_FIELDS:
        if isinstance(data.get(key), list):
            data[key] = set(data[key])
    for key in WRITER_FIELDS:
        data.pop(key, None)
    return data


def read_weights(path: str) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    from safetensors.torch import load_file

    return {k: (v.dtype, tuple(v.shape)) for k, v in load_file(os.path.join(path, "adapter_model.safetensors")).items()}


@pytest.fixture
def saved_config() -> Callable[[str], dict[str, Any]]:
    return read_config


@pytest.fixture
def saved_weights() -> Callable[[str], dict[str, tuple[torch.dtype, tuple[int, ...]]]]:
    return read_weights
