"""PEANuT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing peanut`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Depths 0 and 2 (the nested encoder/decoder lists whose saved keys drop the adapter name before the
list index) and a transformers-only activation on the Llama.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import PeanutConfig


def conformance() -> Conformance:
    return Conformance(
        method="peanut",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: PeanutConfig(r=4, depth=2, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: PeanutConfig(r=3, act_fn="tanh", scaling=0.5, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: PeanutConfig(r=4, depth=1, act_fn="gelu_new", task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"depth": -1}, {"act_fn": "not_an_activation"}, {"layers_pattern": "layers"}),
    )
