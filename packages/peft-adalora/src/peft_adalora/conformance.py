"""AdaLoRA's cases for peft-core's conformance kit (`python -m peft_core.testing adalora`). AdaLoRA trains one
adapter at a time, so every second adapter is in inference mode; `total_step` (the schedule length) is required."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import AdaLoraConfig


def conformance() -> Conformance:
    return Conformance.of(
        AdaLoraConfig,
        on(
            models.MLP, total_step=20, init_r=4, lora_alpha=6,
            second=dict(total_step=20, init_r=3, lora_alpha=5, target_modules=["lin1"], inference_mode=True),
        ),
        on(models.CONV, "conv2d", total_step=20, init_r=3, second=dict(total_step=20, init_r=2, target_modules=["conv2d"], inference_mode=True)),
        on(
            models.GPT2, "gpt2-conv1d-bias", total_step=20, init_r=3, lora_alpha=4, bias="lora_only",
            second=dict(total_step=20, init_r=2, target_modules=["c_attn"], inference_mode=True),
        ),
        random_init={"init_lora_weights": False},
        hf=True,
        bad_values=(
            {"tinit": 15, "tfinal": 5},  # no budgeting phase left
            {"orth_reg_weight": -0.1},
            {"use_dora": True},
            {"init_r": -1},
            {"layers_pattern": "layers"},
            {"target_modules": "q", "layers_to_transform": [0]},  # a regex takes no layer selection
        ),
    )
