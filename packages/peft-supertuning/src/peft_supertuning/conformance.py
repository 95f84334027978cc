"""SuperTuning's cases for peft-core's conformance kit (`python -m peft_core.testing supertuning`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import SupertuningConfig


def conformance() -> Conformance:
    return Conformance.of(
        SupertuningConfig,
        on(
            models.MLP, sparsity=0.9, second=dict(sparsity=0.8, select_top=False, r=2, target_modules=["lin1"]),
            bad_values=({"lora_alpha": 4.0},),  # a LoRA scaling without a LoRA rank
        ),
        on(models.MLP, "mlp-supra", sparsity=0.95, r=3, lora_alpha=1.5, target_modules=["lin0", "lin2"]),
        on(models.LLAMA, sparsity=0.9, r=4, target_modules=None),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"sparsity": 1.0}, {"sparsity": -0.1}),
    )
