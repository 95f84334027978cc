"""The toy method's conformance declaration (what a real method package ships in its source)."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, models

from . import ToyConfig


def conformance() -> Conformance:
    return Conformance(
        method="toy",
        cases=(
            Case("mlp", models.MLP, lambda: ToyConfig(target_modules=["lin0", "lin1", "lin2"])),
            Case(
                "llama",
                models.LLAMA,
                lambda: ToyConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
                second=lambda: ToyConfig(r=2, target_modules=["v_proj", "o_proj"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        bad_values=({"r": 65}, {"use_magic": True}),
    )
