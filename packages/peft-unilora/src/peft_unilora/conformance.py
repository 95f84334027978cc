"""Uni-LoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing unilora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Indices regenerated from the seed or saved, `θ` shorter and longer than the factor entries, GPT-2's Conv1D.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import UniLoraConfig


def conformance() -> Conformance:
    return Conformance(
        method="unilora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: UniLoraConfig(r=4, theta_d_length=64, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: UniLoraConfig(r=2, theta_d_length=1000, proj_seed=7, save_indices=True, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: UniLoraConfig(r=2, theta_d_length=128, task_type="CAUSAL_LM")),
            Case("gpt2", models.GPT2, lambda: UniLoraConfig(r=2, theta_d_length=96, save_indices=True, target_modules=["c_attn"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init=None,  # theta_d starts non-zero (small): a fresh adapter changes the output a little
        hf=HuggingFace(),
        bad_values=({"theta_d_length": 0}, {"init_theta_d_bound": 0.0}, {"bias": "lora_only"}),
    )
