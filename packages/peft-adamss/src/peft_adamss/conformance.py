"""AdaMSS's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing adamss`)."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import AdamssConfig


def conformance() -> Conformance:
    return Conformance(
        method="adamss",
        cases=(
            # biases: the update also reaches the bias column
            Case(
                "mlp",
                models.MLP,
                lambda: AdamssConfig(r=8, num_subspaces=3, subspace_rank=2, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: AdamssConfig(r=4, num_subspaces=2, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: AdamssConfig(r=8, num_subspaces=3, subspace_rank=2, task_type="CAUSAL_LM")),
            Case(
                "llama-dynamic-rank",
                models.LLAMA,
                lambda: AdamssConfig(
                    r=6, num_subspaces=2, subspace_rank=3, use_dynamic_rank=True, svd_threshold=0.2,
                    target_modules=["k_proj", "down_proj"], task_type="CAUSAL_LM",
                ),
            ),
        ),
        random_init={"init_weights": None},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"init_weights": "kaiming"}, {"num_subspaces": 0}, {"use_asa": True, "init_warmup": 10, "final_warmup": 5}),
    )
