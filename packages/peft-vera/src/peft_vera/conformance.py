"""VeRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing vera`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Each adapter owns its projections (`vera_A` / `vera_B` on the tuner);
Hugging Face PEFT gives a second adapter the first one's, so the second adapters compared with it use
the same key, rank and targets (the projections are then the same in both libraries).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import VeraConfig


def conformance() -> Conformance:
    return Conformance(
        method="vera",
        cases=(
            Case(
                "mlp-bias-extras",
                models.MLP,
                lambda: VeraConfig(
                    r=3, target_modules=["lin0", "lin1"], bias="vera_only", modules_to_save=["lin2"], d_initial=0.3
                ),
                second=lambda: VeraConfig(r=3, target_modules=["lin0", "lin1"], d_initial=0.2),
            ),
            Case(
                "llama-save-projection",
                models.LLAMA,
                lambda: VeraConfig(
                    r=4, target_modules=["q_proj", "v_proj", "down_proj"], projection_prng_key=5, task_type="CAUSAL_LM"
                ),
                second=lambda: VeraConfig(
                    r=4, target_modules=["q_proj", "v_proj", "down_proj"], projection_prng_key=5, d_initial=0.2,
                    task_type="CAUSAL_LM",
                ),
            ),
            # projections not saved: regenerated from the key when loaded, here and in Hugging Face PEFT
            Case(
                "gpt2-conv1d-prng-only",
                models.GPT2,
                lambda: VeraConfig(
                    r=4, target_modules=["c_attn", "mlp.c_proj"], save_projection=False, projection_prng_key=3,
                    task_type="CAUSAL_LM",
                ),
            ),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=({"bias": "lora"}, {"r": 0}, {"layers_pattern": "layers"}),
    )
