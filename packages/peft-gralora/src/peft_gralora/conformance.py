"""GraLoRA's cases for peft-core's conformance kit (`python -m peft_core.testing gralora`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import GraloraConfig


def conformance() -> Conformance:
    return Conformance.of(
        GraloraConfig,
        on(models.MLP, r=4, gralora_k=2, hybrid_r=1, alpha=8, second=dict(r=8, gralora_k=4, alpha=8, target_modules=["lin1"])),
        on(models.LLAMA, r=4, gralora_k=2, alpha=8),
        on(models.GPT2, "gpt2-conv1d", r=4, gralora_k=2, hybrid_r=2, alpha=8),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"r": 5}, {"gralora_k": 0}, {"hybrid_r": -1}, {"bias": "some"}),
    )
