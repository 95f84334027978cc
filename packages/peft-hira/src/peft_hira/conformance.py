"""HiRA's cases for peft-core's conformance kit (`python -m peft_core.testing hira`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import HiraConfig


def conformance() -> Conformance:
    return Conformance.of(
        HiraConfig,
        # on layers that already hold an adapter, rank_pattern applies (lin2: rank 3)
        on(models.MLP, r=4, second=dict(r=2, target_modules=["lin1", "lin2"], rank_pattern={"lin2": 3})),
        on(models.LLAMA, r=4, target_modules=None),
        on(models.GPT2, "gpt2-conv1d", r=4),
        on(models.EMBEDDING, r=4),
        # 3x3 and 1x1 Conv2d, Conv1d, and a Conv3d with a (1, 3, 3) kernel
        on(models.CONV, r=2, target_modules=["conv2d", "pointwise", "conv1d", "conv3d"]),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"init_weights": "uniform"}, {"rank_pattern": {"lin0": 0}}),
    )
