"""RandLoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing randlora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import RandLoraConfig


def conformance() -> Conformance:
    return Conformance(
        method="randlora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: RandLoraConfig(r=4, randlora_alpha=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: RandLoraConfig(r=8, randlora_alpha=16, projection_prng_key=1, target_modules=["lin1"]),
            ),
            Case(
                "llama",
                models.LLAMA,
                lambda: RandLoraConfig(r=4, randlora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM"),
            ),
            Case(
                "llama-sparse-regenerated",
                models.LLAMA,
                lambda: RandLoraConfig(
                    r=8, randlora_alpha=16, sparse=True, save_projection=False, target_modules=["k_proj", "up_proj"],
                    task_type="CAUSAL_LM",
                ),
            ),
            Case("gpt2-conv1d", models.GPT2, lambda: RandLoraConfig(r=4, randlora_alpha=8, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"bias": "some"}, {"projection_prng_key": "zero"},),
    )
