"""PVeRA's cases for peft-core's conformance kit (`python -m peft_core.testing pvera`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import PveraConfig


def conformance() -> Conformance:
    return Conformance.of(
        PveraConfig,
        on(models.MLP, r=4, second=dict(r=2, projection_prng_key=3, target_modules=["lin1"])),
        on(models.LLAMA, r=4, target_modules=None),
        on(models.LLAMA, "llama-regenerated", r=8, save_projection=False, target_modules=["k_proj", "down_proj"]),
        on(models.GPT2, "gpt2-conv1d", r=4),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"bias": "some"}, {"projection_prng_key": "zero"}, {"generator_seed": 1.5}),
    )
