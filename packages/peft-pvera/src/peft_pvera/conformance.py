"""PVeRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing pvera`)."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import PveraConfig


def conformance() -> Conformance:
    return Conformance(
        method="pvera",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: PveraConfig(r=4, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: PveraConfig(r=2, projection_prng_key=3, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: PveraConfig(r=4, task_type="CAUSAL_LM")),
            Case(
                "llama-regenerated",
                models.LLAMA,
                lambda: PveraConfig(
                    r=8, save_projection=False, target_modules=["k_proj", "down_proj"], task_type="CAUSAL_LM"
                ),
            ),
            Case(
                "gpt2-conv1d",
                models.GPT2,
                lambda: PveraConfig(r=4, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"bias": "some"}, {"projection_prng_key": "zero"}, {"generator_seed": 1.5}),
    )
