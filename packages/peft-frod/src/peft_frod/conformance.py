"""FRoD's cases for peft-core's conformance kit (`python -m peft_core.testing frod`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import FrodConfig


def conformance() -> Conformance:
    return Conformance.of(
        FrodConfig,
        on(models.MLP, sparse_rate=0.05, progressbar=False, second=dict(sparse_rate=0.1, progressbar=False, target_modules=["lin1"])),
        on(models.LLAMA, sparse_rate=0.05, progressbar=False, target_modules=None),
        on(
            models.LLAMA, "llama-regenerated",
            sparse_rate=0.02, save_projection=False, progressbar=False, target_modules=["k_proj", "down_proj"],
        ),
        on(models.GPT2, "gpt2-conv1d", sparse_rate=0.02, progressbar=False),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"sparse_rate": 1.5}, {"bias": "some"}, {"projection_prng_key": "zero"}),
        not_applicable={
            "dtypes": "FRoD adapters don't carry between fp32 and bf16 bases: the frozen U is solved from the rounded "
            "base weight through an ill-conditioned basis (Hugging Face PEFT's FRoD too); tests/test_frod.py checks "
            "what holds on half-precision bases",
        },
    )
