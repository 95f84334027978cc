"""Lily's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing lily`).

Lily's update depends on the whole batch (its router averages over every token), so it can't merge
and refuses mixed-adapter batches.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import LilyConfig


def conformance() -> Conformance:
    return Conformance(
        method="lily",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: LilyConfig(r=4, num_B=3, scaling=0.5, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: LilyConfig(r=2, target_modules=["lin1"]),
            ),
            # two layers per target: A shared by both (stride 2), B shared by the group
            Case("llama", models.LLAMA, lambda: LilyConfig(r=4, stride_A=2, num_B=2, task_type="CAUSAL_LM")),
            Case(
                "llama-regex",
                models.LLAMA,
                lambda: LilyConfig(r=4, num_B=2, target_modules=r".*\.(q_proj|o_proj|up_proj)", task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        merge=False,
        mixed_batches=False,
        hf=HuggingFace(),
        bad_values=({"stride_A": 0}, {"num_B": 1}, {"scaling": "big"}),
    )
