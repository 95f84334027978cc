"""DEFT's cases for peft-core's conformance kit (`python -m peft_core.testing deft`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import DeftConfig


def conformance() -> Conformance:
    return Conformance.of(
        DeftConfig,
        on(models.MLP, r=4, second=dict(r=2, decomposition_method="qr", alpha=4, target_modules=["lin1"])),
        on(
            models.MLP, "mlp-para", r=3, para=True, decomposition_method="qr", target_modules=["lin0", "lin2"],
            second=dict(r=40, target_modules=["lin2"]),  # r capped at the 16 outputs
        ),
        on(models.LLAMA, r=4, alpha=8, target_modules=None),
        on(models.GPT2, r=4),
        random_init={"init_weights": False},
        noop_init={"para": False},  # PaRa removes a subspace from the start
        hf=True,
        bad_values=({"decomposition_method": "svd"}, {"bias": "lora_only"}, {"layers_pattern": "layers"}),
    )
