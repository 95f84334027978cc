"""HRA's cases for peft-core's conformance kit (`python -m peft_core.testing hra`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import HRAConfig


def conformance() -> Conformance:
    return Conformance.of(
        HRAConfig,
        on(models.MLP, r=2, second=dict(target_modules=["lin1"], r=4, apply_GS=True)),
        on(models.MLP, "mlp-modules-to-save", target_modules=["lin0"], r=4, modules_to_save=["lin2"]),
        on(models.CONV, r=4, second=dict(target_modules=["conv2d"], r=2, apply_GS=True)),
        on(models.LLAMA, r=2, second=dict(target_modules=["o_proj"], r=4, apply_GS=True)),
        random_init={"init_weights": False},
        hf=True,
        bad_values=(
            {"target_modules": ".*q", "layers_to_transform": 0},
            {"target_modules": ".*q", "layers_pattern": "layers"},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"bias": "some"},
        ),
    )
