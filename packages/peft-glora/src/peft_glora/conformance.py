"""GLoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing glora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
The MLP has biases (so `C`, `D`, `E` are trained); the Llama has none (they stay zero buffers).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import GloraConfig


def conformance() -> Conformance:
    return Conformance(
        method="glora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: GloraConfig(r=4, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: GloraConfig(config_A_B="vector", config_C="vector", config_D_E="vector", target_modules=["lin1", "lin2"]),
            ),
            Case(
                "mlp-constant",
                models.MLP,
                lambda: GloraConfig(config_A_B="constant", config_C="none", config_D_E="none", target_modules=["lin0", "lin2"]),
                second=lambda: GloraConfig(r=2, config_A_B="none", target_modules=["lin0"]),
            ),
            Case("llama", models.LLAMA, lambda: GloraConfig(r=4, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"config_A_B": "diagonal"}, {"config_C": "constant"}, {"config_D_E": "lora"}, {"bias": "lora_only"}),
    )
