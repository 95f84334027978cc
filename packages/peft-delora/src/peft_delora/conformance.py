"""DeLoRA's cases for peft-core's conformance kit (`python -m peft_core.testing delora`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import DeloraConfig


def conformance() -> Conformance:
    return Conformance.of(
        DeloraConfig,
        on(models.MLP, r=4, delora_lambda=5, rank_pattern={"lin2": 2}, second=dict(r=2, target_modules=["lin1"])),
        on(models.LLAMA, r=4),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"bias": "lora_only"}, {"rank_pattern": {"lin0": 0}}, {"layers_pattern": "layers"}),
    )
