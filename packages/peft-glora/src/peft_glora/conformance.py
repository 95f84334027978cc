"""GLoRA's cases for peft-core's conformance kit (`python -m peft_core.testing glora`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import GloraConfig


def conformance() -> Conformance:
    return Conformance.of(
        GloraConfig,
        on(
            models.MLP, r=4,
            second=dict(config_A_B="vector", config_C="vector", config_D_E="vector", target_modules=["lin1", "lin2"]),
        ),
        on(
            models.MLP, "mlp-constant", config_A_B="constant", config_C="none", config_D_E="none", target_modules=["lin0", "lin2"],
            second=dict(r=2, config_A_B="none", target_modules=["lin0"]),
        ),
        on(models.LLAMA, r=4, target_modules=None),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"config_A_B": "diagonal"}, {"config_C": "constant"}, {"config_D_E": "lora"}, {"bias": "lora_only"}),
    )
