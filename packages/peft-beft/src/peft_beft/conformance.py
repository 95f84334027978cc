"""BEFT's cases for peft-core's conformance kit (`python -m peft_core.testing beft`)."""

from __future__ import annotations

from functools import partial

from peft_core.testing import Conformance, models, on

from .config import BeftConfig

LLAMA_WITH_BIASES = models.LLAMA.variant("llama-biases", factory=partial(models.make_llama, attention_bias=True, mlp_bias=True))


def conformance() -> Conformance:
    return Conformance.of(
        BeftConfig,
        on(models.MLP, second=dict(target_modules=["lin1"])),
        on(LLAMA_WITH_BIASES, target_modules=None),  # HF's default targets (v_proj)
        # plus the MLP's down projection
        on(LLAMA_WITH_BIASES, "llama-biases-mlp", target_modules=["v_proj", "down_proj"], modules_to_save=["lm_head"]),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"init_weights": "yes"},),
    )
