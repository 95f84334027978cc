"""AdaLoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing adalora`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. AdaLoRA trains one adapter at a time, so every second adapter is
declared in inference mode; `total_step` (the schedule length) is required.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import AdaLoraConfig


def conformance() -> Conformance:
    return Conformance(
        method="adalora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: AdaLoraConfig(total_step=20, init_r=4, lora_alpha=6, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: AdaLoraConfig(total_step=20, init_r=3, lora_alpha=5, target_modules=["lin1"], inference_mode=True),
            ),
            Case(
                "conv2d",
                models.CONV,
                lambda: AdaLoraConfig(total_step=20, init_r=3, target_modules=["conv2d", "pointwise", "head"]),
                second=lambda: AdaLoraConfig(total_step=20, init_r=2, target_modules=["conv2d"], inference_mode=True),
            ),
            Case(
                "gpt2-conv1d-bias",
                models.GPT2,
                lambda: AdaLoraConfig(
                    total_step=20, init_r=3, lora_alpha=4, target_modules=["c_attn", "mlp.c_proj"], bias="lora_only",
                    task_type="CAUSAL_LM",
                ),
                second=lambda: AdaLoraConfig(
                    total_step=20, init_r=2, target_modules=["c_attn"], inference_mode=True, task_type="CAUSAL_LM"
                ),
            ),
        ),
        random_init={"init_lora_weights": False},
        hf=HuggingFace(),
        bad_values=(
            {"tinit": 15, "tfinal": 5},  # no budgeting phase left
            {"orth_reg_weight": -0.1},
            {"use_dora": True},
            {"init_r": -1},
            {"layers_pattern": "layers"},
            {"target_modules": "q", "layers_to_transform": [0]},  # a regex takes no layer selection
        ),
    )
