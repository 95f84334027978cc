"""BEFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing beft`).

Merging needs a bias in every adapted layer, so the Llama case uses a Llama with biases
(`attention_bias` / `mlp_bias`); the refusal on bias-less layers is tested in the package's tests.
"""

from __future__ import annotations

from functools import partial

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import BeftConfig

LLAMA_WITH_BIASES = TinyModel(
    "llama-biases", partial(models.make_llama, attention_bias=True, mlp_bias=True), models.LLAMA.inputs, requires=("transformers",)
)


def conformance() -> Conformance:
    return Conformance(
        method="beft",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: BeftConfig(target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: BeftConfig(target_modules=["lin1"]),
            ),
            # HF's default targets (v_proj) plus the MLP's down projection
            Case("llama-biases", LLAMA_WITH_BIASES, lambda: BeftConfig(task_type="CAUSAL_LM")),
            Case(
                "llama-biases-mlp",
                LLAMA_WITH_BIASES,
                lambda: BeftConfig(target_modules=["v_proj", "down_proj"], modules_to_save=["lm_head"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"init_weights": "yes"},),
    )
