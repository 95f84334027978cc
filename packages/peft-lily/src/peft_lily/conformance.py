"""Lily's cases for peft-core's conformance kit (`python -m peft_core.testing lily`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import LilyConfig


def conformance() -> Conformance:
    return Conformance.of(
        LilyConfig,
        on(models.MLP, r=4, num_B=3, scaling=0.5, second=dict(r=2, target_modules=["lin1"])),
        # two layers per target: A shared by both (stride 2), B shared by the group
        on(models.LLAMA, r=4, stride_A=2, num_B=2, target_modules=None),
        on(models.LLAMA, "llama-regex", r=4, num_B=2, target_modules=r".*\.(q_proj|o_proj|up_proj)"),
        random_init={"init_weights": False},
        merge=False,
        mixed_batches=False,
        hf=True,
        bad_values=({"stride_A": 0}, {"num_B": 1}, {"scaling": "big"}),
    )
