"""FRoD's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing frod`).

FRoD's forward rebuilds the adapted weight (`U (S + diag λ) Vᵀ`, which equals `W` only up to rounding),
so merged and mixed-batch outputs are compared with the kit's tolerance.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import FrodConfig


def conformance() -> Conformance:
    return Conformance(
        method="frod",
        not_applicable={
            "dtypes": "FRoD adapters don't carry between fp32 and bf16 bases: the frozen U is solved from the rounded "
            "base weight through an ill-conditioned basis (Hugging Face PEFT's FRoD too); tests/test_frod.py checks "
            "what holds on half-precision bases",
        },
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: FrodConfig(sparse_rate=0.05, progressbar=False, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: FrodConfig(sparse_rate=0.1, progressbar=False, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: FrodConfig(sparse_rate=0.05, progressbar=False, task_type="CAUSAL_LM")),
            Case(
                "llama-regenerated",
                models.LLAMA,
                lambda: FrodConfig(
                    sparse_rate=0.02, save_projection=False, progressbar=False, target_modules=["k_proj", "down_proj"],
                    task_type="CAUSAL_LM",
                ),
            ),
            Case(
                "gpt2-conv1d",
                models.GPT2,
                lambda: FrodConfig(sparse_rate=0.02, progressbar=False, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"sparse_rate": 1.5}, {"bias": "some"}, {"projection_prng_key": "zero"}),
    )
