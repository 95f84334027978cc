"""RandLoRA's cases for peft-core's conformance kit (`python -m peft_core.testing randlora`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import RandLoraConfig


def conformance() -> Conformance:
    return Conformance.of(
        RandLoraConfig,
        on(models.MLP, r=4, randlora_alpha=8, second=dict(r=8, randlora_alpha=16, projection_prng_key=1, target_modules=["lin1"])),
        on(models.LLAMA, r=4, randlora_alpha=8),
        on(
            models.LLAMA, "llama-sparse-regenerated",
            r=8, randlora_alpha=16, sparse=True, save_projection=False, target_modules=["k_proj", "up_proj"],
        ),
        on(models.GPT2, "gpt2-conv1d", r=4, randlora_alpha=8),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"bias": "some"}, {"projection_prng_key": "zero"}),
    )
