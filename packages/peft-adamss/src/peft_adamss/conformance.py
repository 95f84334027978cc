"""AdaMSS's cases for peft-core's conformance kit (`python -m peft_core.testing adamss`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import AdamssConfig


def conformance() -> Conformance:
    return Conformance.of(
        AdamssConfig,
        # biases: the update also reaches the bias column
        on(models.MLP, r=8, num_subspaces=3, subspace_rank=2, second=dict(r=4, num_subspaces=2, target_modules=["lin1"])),
        on(models.LLAMA, r=8, num_subspaces=3, subspace_rank=2, target_modules=None),
        on(
            models.LLAMA, "llama-dynamic-rank",
            r=6, num_subspaces=2, subspace_rank=3, use_dynamic_rank=True, svd_threshold=0.2, target_modules=["k_proj", "down_proj"],
        ),
        random_init={"init_weights": None},
        hf=True,
        bad_values=({"init_weights": "kaiming"}, {"num_subspaces": 0}, {"use_asa": True, "init_warmup": 10, "final_warmup": 5}),
    )
