"""Uni-LoRA's cases for peft-core's conformance kit (`python -m peft_core.testing unilora`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import UniLoraConfig


def conformance() -> Conformance:
    return Conformance.of(
        UniLoraConfig,
        on(
            models.MLP, r=4, theta_d_length=64,
            second=dict(r=2, theta_d_length=1000, proj_seed=7, save_indices=True, target_modules=["lin1"]),
        ),
        on(models.LLAMA, r=2, theta_d_length=128, target_modules=None),
        on(models.GPT2, r=2, theta_d_length=96, save_indices=True, target_modules=["c_attn"]),
        random_init={"init_weights": False},
        noop_init=None,  # theta_d starts non-zero (small): a fresh adapter changes the output a little
        hf=True,
        bad_values=({"theta_d_length": 0}, {"init_theta_d_bound": 0.0}, {"bias": "lora_only"}),
    )
