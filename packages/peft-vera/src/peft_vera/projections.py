"""The frozen random projections `vera_A [r, max_in]` and `vera_B [max_out, r]`, one pair per adapter.

They are drawn exactly as Hugging Face PEFT draws them, so `save_projection=False` adapters load
bit-identically: a CPU `torch.Generator` seeded with `projection_prng_key` fills `vera_A` first,
then `vera_B`, each uniform in `±sqrt(3) * sqrt(2) / sqrt(fan_in)` (`fan_in` = size of dim 1).
"""

from __future__ import annotations

import math

import torch


def kaiming_uniform(shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """HF's `_kaiming_init`: the same float operations in the same order, so the bound is bit-identical."""
    tensor = torch.empty(shape)
    fan_in = shape[1]
    gain = math.sqrt(2)
    std = gain / math.sqrt(fan_in)
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def make_projections(r: int, max_in: int, max_out: int, key: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device="cpu").manual_seed(key)
    vera_a = kaiming_uniform((r, max_in), generator)
    vera_b = kaiming_uniform((max_out, r), generator)
    return vera_a, vera_b
