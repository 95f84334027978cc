"""PEANuT's cases for peft-core's conformance kit (`python -m peft_core.testing peanut`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import PeanutConfig


def conformance() -> Conformance:
    return Conformance.of(
        PeanutConfig,
        on(models.MLP, r=4, depth=2, second=dict(r=3, act_fn="tanh", scaling=0.5, target_modules=["lin1"])),
        on(models.LLAMA, r=4, depth=1, act_fn="gelu_new", target_modules=None),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"depth": -1}, {"act_fn": "not_an_activation"}, {"layers_pattern": "layers"}),
    )
