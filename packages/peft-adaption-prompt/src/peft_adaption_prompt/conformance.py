"""Adaption prompt's cases for peft-core's conformance kit (`python -m peft_core.testing adaption_prompt`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import AdaptionPromptConfig


def conformance() -> Conformance:
    return Conformance.of(
        AdaptionPromptConfig,
        # target_modules names the attention modules here; None: the model type's own
        on(
            models.LLAMA, adapter_len=4, adapter_layers=2, target_modules=None,
            second=dict(adapter_len=2, adapter_layers=1, target_modules=None),
        ),
        on(models.GPT2, adapter_len=3, adapter_layers=1, target_modules=None),
        random_init=None,  # no init switch: the gates always start at zero
        merge=False,
        hf=True,
        bad_values=({"adapter_len": 0}, {"adapter_layers": -1}, {"target_modules": ""}),
    )
