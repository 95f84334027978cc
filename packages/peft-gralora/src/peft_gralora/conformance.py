"""GraLoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing gralora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import GraloraConfig


def conformance() -> Conformance:
    return Conformance(
        method="gralora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: GraloraConfig(r=4, gralora_k=2, hybrid_r=1, alpha=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: GraloraConfig(r=8, gralora_k=4, alpha=8, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: GraloraConfig(r=4, gralora_k=2, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM")),
            Case("gpt2-conv1d", models.GPT2, lambda: GraloraConfig(r=4, gralora_k=2, hybrid_r=2, alpha=8, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"r": 5}, {"gralora_k": 0}, {"hybrid_r": -1}, {"bias": "some"},),
    )
