"""TinyLoRA's cases for peft-core's conformance kit (`python -m peft_core.testing tinylora`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import TinyLoraConfig


def conformance() -> Conformance:
    return Conformance.of(
        TinyLoraConfig,
        on(models.MLP, r=2, u=4, second=dict(r=3, u=2, weight_tying=1.0, target_modules=["lin1", "lin2"])),
        on(models.LLAMA, r=2, u=3, weight_tying=0.5, target_modules=None),
        on(models.LLAMA, "llama-embedding-regenerated", r=2, u=5, save_projection=False, target_modules=["embed_tokens", "down_proj"]),
        on(models.GPT2, "gpt2-conv1d", r=2, u=3),
        random_init={"init_weights": "uniform", "init_v_bound": 0.5},
        hf=True,
        bad_values=({"u": 0}, {"weight_tying": 1.5}, {"init_weights": "gaussian"}),
    )
