"""Helpers shared by peft-lora's tests (put on sys.path by conftest.py): the conformance kit's tiny
models (`peft_core.testing.models`, random weights, nothing downloaded), inputs, and LoRA's randomizer.
"""

from __future__ import annotations

import torch
from peft_core.testing import models
from peft_core.testing.models import VOCAB, output_of


# The kit's tiny models (built once per process with a fixed seed; each call returns a fresh copy).
tiny_llama = models.LLAMA.build
tiny_gpt2 = models.GPT2.build  # transformers Conv1D layers, random non-zero biases
conv_net = models.CONV.build  # Conv1d/2d/3d and a Linear head
emb_mlp = models.EMBEDDING.build  # an embedding (padding row 0) and linear layers


def input_ids(batch: int = 2, length: int = 7, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=g)


def images(batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 8, 8, generator=g)


def logits(model, ids: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return output_of(model(ids, **kwargs))


def randomize_lora(model, seed: int = 123, std: float = 0.2, biases: str | None = None) -> None:
    """Give the adapter random values, as if trained, so that equal outputs prove something.

    LoRA factors get N(0, std); DoRA magnitudes and modules_to_save copies are perturbed; `biases`
    ("all" or "lora_only") also perturbs the base biases that bias mode trains.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=g).to(param.device)
            if "lora_magnitude_vector" in name:
                param.mul_(1 + 0.1 * noise)
            elif ".lora_" in name or name.startswith("lora_"):
                param.copy_(noise * std)
            elif ".modules_to_save." in name:
                param.add_(noise * 0.05)
            elif biases == "all" and name.endswith(".bias") and ".original_module." not in name:
                param.add_(noise * 0.05)
            elif biases == "lora_only" and name.endswith(".base_layer.bias"):
                param.add_(noise * 0.05)
