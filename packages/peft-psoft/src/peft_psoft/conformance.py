"""PSOFT's cases for peft-core's conformance kit (`python -m peft_core.testing psoft`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import PsoftConfig


def conformance() -> Conformance:
    return Conformance.of(
        PsoftConfig,
        on(models.MLP, r=4, psoft_alpha=8, second=dict(r=2, ab_svd_init="pissa_init", psoft_orth=False, target_modules=["lin1"])),
        on(models.LLAMA, r=4, target_modules=None),
        on(
            models.LLAMA, "llama-neumann-lowrank",
            r=4, psoft_svd="lowrank", psoft_svd_lowrank_niter=4, random_seed=3, use_cayley_neumann=True,
            num_cayley_neumann_terms=6, cayley_neumann_eps=0.9, psoft_mag_a=False, target_modules=["k_proj", "down_proj"],
        ),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"ab_svd_init": "lora"}, {"psoft_svd": "fast"}, {"use_cayley_neumann": True, "cayley_neumann_eps": 1.5}),
    )
