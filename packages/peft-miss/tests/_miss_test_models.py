"""Tiny models and helpers shared by peft-miss's tests (put on sys.path by conftest)."""

from __future__ import annotations

import json
import os
import warnings

import torch
from torch import nn

SET_FIELDS = ("target_modules", "exclude_modules", "modules_to_save")


def tiny_llama(seed: int = 0):
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


def input_ids(batch: int = 2, length: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 128, (batch, length), generator=g)


class ConvNet(nn.Module):
    """A 3x3 conv (with padding and bias), a 1x1 conv, and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.pw = nn.Conv2d(6, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.pw(torch.relu(self.conv(x))))
        return self.head(h.mean(dim=(2, 3)))


def conv_net(seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    return ConvNet().eval()


def images(batch: int = 3, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, 5, 5, generator=g)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(8, 16)
        self.lin1 = nn.Linear(16, 12)
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.lin1(torch.relu(self.lin0(x)))))


def mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP().eval()


def run(model, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(inputs)
    return out.logits if hasattr(out, "logits") else out


def config_json(directory) -> dict:
    with open(os.path.join(directory, "adapter_config.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    for key in SET_FIELDS:
        if isinstance(data.get(key), list):
            data[key] = sorted(set(data[key]))
    data.pop("peft_version")  # informational; ours says "0.21.2@peft-core-<version>"
    return data


def saved_tensors(directory) -> dict:
    from safetensors.torch import load_file

    state = load_file(os.path.join(directory, "adapter_model.safetensors"))
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


def load_in_hf(peft, base, directory, **kwargs):
    """HF's PeftModel.from_pretrained, failing on HF's 'Unexpected keyword arguments' warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = peft.PeftModel.from_pretrained(base, directory, **kwargs)
    unexpected = [str(w.message) for w in caught if "Unexpected keyword" in str(w.message)]
    assert not unexpected, unexpected
    return model.eval()


def randomize(model, prefix: str, seed: int = 1, std: float = 0.1) -> None:
    """Give every adapter parameter whose name contains `prefix` fresh random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if prefix in name:
                param.copy_(torch.randn(param.shape, generator=g) * std)
