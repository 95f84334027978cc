"""Super-Tuning's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing supertuning`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Sparse-only and Supra (sparse + LoRA), largest and smallest entries. Positions recomputed on load
(`save_precomputed_indices=False`) are tested in tests/test_sparse_support.py: they follow the base
weight's dtype (a bf16 base ranks magnitudes differently), which the kit's dtype check would flag.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import SupertuningConfig


def conformance() -> Conformance:
    return Conformance(
        method="supertuning",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: SupertuningConfig(sparsity=0.9, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: SupertuningConfig(sparsity=0.8, select_top=False, r=2, target_modules=["lin1"]),
                bad_values=({"lora_alpha": 4.0},),  # a LoRA scaling without a LoRA rank
            ),
            Case(
                "mlp-supra",
                models.MLP,
                lambda: SupertuningConfig(sparsity=0.95, r=3, lora_alpha=1.5, target_modules=["lin0", "lin2"]),
            ),
            Case("llama", models.LLAMA, lambda: SupertuningConfig(sparsity=0.9, r=4, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"sparsity": 1.0}, {"sparsity": -0.1}),
    )
