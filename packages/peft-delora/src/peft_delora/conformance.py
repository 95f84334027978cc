"""DeLoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing delora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import DeloraConfig


def conformance() -> Conformance:
    return Conformance(
        method="delora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: DeloraConfig(r=4, delora_lambda=5, target_modules=["lin0", "lin1", "lin2"], rank_pattern={"lin2": 2}),
                second=lambda: DeloraConfig(r=2, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: DeloraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"bias": "lora_only"}, {"rank_pattern": {"lin0": 0}}, {"layers_pattern": "layers"},),
    )
