"""SHiRA's cases for peft-core's conformance kit (`python -m peft_core.testing shira`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import ShiraConfig


def conformance() -> Conformance:
    return Conformance.of(
        ShiraConfig,
        on(models.MLP, r=2, random_seed=1, second=dict(r=1, random_seed=2, target_modules=["lin1"])),
        on(models.LLAMA, r=1, target_modules=["q_proj", "v_proj"]),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"random_seed": "seven"}, {"mask_type": 3}),
    )
