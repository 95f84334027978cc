"""PSOFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing psoft`)."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import PsoftConfig


def conformance() -> Conformance:
    return Conformance(
        method="psoft",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: PsoftConfig(r=4, psoft_alpha=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: PsoftConfig(r=2, ab_svd_init="pissa_init", psoft_orth=False, target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: PsoftConfig(r=4, task_type="CAUSAL_LM")),
            Case(
                "llama-neumann-lowrank",
                models.LLAMA,
                lambda: PsoftConfig(
                    r=4, psoft_svd="lowrank", psoft_svd_lowrank_niter=4, random_seed=3, use_cayley_neumann=True,
                    num_cayley_neumann_terms=6, cayley_neumann_eps=0.9, psoft_mag_a=False,
                    target_modules=["k_proj", "down_proj"], task_type="CAUSAL_LM",
                ),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"ab_svd_init": "lora"}, {"psoft_svd": "fast"}, {"use_cayley_neumann": True, "cayley_neumann_eps": 1.5}),
    )
