"""PVeRA's frozen random projections, drawn exactly as Hugging Face PEFT draws them.

A CPU generator seeded with `projection_prng_key` fills `pvera_A [2r, max_in]` first (its rows are
the mean half and the log-variance half), then `pvera_B [max_out, r]`, each with torch's default
Kaiming-uniform init. So `save_projection=False` adapters regenerate bit-identical projections.
"""

from __future__ import annotations

import torch
from torch import nn


def draw_projections(r: int, max_in: int, max_out: int, key: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device="cpu").manual_seed(key)
    pvera_a = nn.init.kaiming_uniform_(torch.empty(2 * r, max_in), generator=generator)
    pvera_b = nn.init.kaiming_uniform_(torch.empty(max_out, r), generator=generator)
    return pvera_a, pvera_b
