"""SHiRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing shira`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import ShiraConfig


def conformance() -> Conformance:
    return Conformance(
        method="shira",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: ShiraConfig(r=2, random_seed=1, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: ShiraConfig(r=1, random_seed=2, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: ShiraConfig(r=1, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"random_seed": "seven"}, {"mask_type": 3},),
    )
