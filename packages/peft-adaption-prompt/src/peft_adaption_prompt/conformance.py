"""Adaption prompt's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing adaption_prompt`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
The method wraps attention modules of Llama-like and GPT-2 models. A fresh adapter is a no-op (its gates start
at zero); the kit's noise on the gates makes it act. It can't merge (attention over extra tokens is no weight
change).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import AdaptionPromptConfig


def conformance() -> Conformance:
    return Conformance(
        method="adaption_prompt",
        cases=(
            Case(
                "llama",
                models.LLAMA,
                lambda: AdaptionPromptConfig(adapter_len=4, adapter_layers=2, task_type="CAUSAL_LM"),
                second=lambda: AdaptionPromptConfig(adapter_len=2, adapter_layers=1, task_type="CAUSAL_LM"),
            ),
            Case("gpt2", models.GPT2, lambda: AdaptionPromptConfig(adapter_len=3, adapter_layers=1, task_type="CAUSAL_LM")),
        ),
        random_init=None,  # no init switch: the gates always start at zero
        noop_init={},
        merge=False,
        hf=HuggingFace(),
        bad_values=({"adapter_len": 0}, {"adapter_layers": -1}, {"target_modules": ""}),
    )
