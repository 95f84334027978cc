"""DEFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing deft`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Covers both decompositions, PaRa, the alpha scaling and GPT-2's Conv1D (weights stored transposed).
DEFT computes in float32 with different association orders for forward and merge, so the Hugging
Face comparisons stay bit-exact (same ops) while merges are compared with the kit's tolerance.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import DeftConfig


def conformance() -> Conformance:
    return Conformance(
        method="deft",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: DeftConfig(r=4, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: DeftConfig(r=2, decomposition_method="qr", alpha=4, target_modules=["lin1"]),
            ),
            Case(
                "mlp-para",
                models.MLP,
                lambda: DeftConfig(r=3, para=True, decomposition_method="qr", target_modules=["lin0", "lin2"]),
                second=lambda: DeftConfig(r=40, target_modules=["lin2"]),  # r capped at the 16 outputs
            ),
            Case("llama", models.LLAMA, lambda: DeftConfig(r=4, alpha=8, task_type="CAUSAL_LM")),
            Case("gpt2", models.GPT2, lambda: DeftConfig(r=4, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={"para": False},  # PaRa removes a subspace from the start
        hf=HuggingFace(),
        bad_values=({"decomposition_method": "svd"}, {"bias": "lora_only"}, {"layers_pattern": "layers"}),
    )
