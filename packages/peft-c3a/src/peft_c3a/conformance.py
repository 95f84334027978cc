"""C3A's cases for peft-core's conformance kit (`python -m peft_core.testing c3a`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import C3AConfig


def conformance() -> Conformance:
    return Conformance.of(
        C3AConfig,
        on(models.MLP, block_size=8, second=dict(block_size=4, target_modules=["lin1"], init_weights="gaussian")),
        on(models.LLAMA, block_size=16, block_size_pattern={"v_proj": 8}),
        random_init={"init_weights": "xavier_uniform"},
        noop_init={"init_weights": True},
        hf=True,
        bad_values=({"block_size": 0}, {"init_weights": "orthogonal"}, {"bias": "some"}),
    )
