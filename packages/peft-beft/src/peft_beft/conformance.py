"""BEFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing beft`).

Merging needs a bias in every adapted layer, so the Llama case uses a Llama with biases
(`attention_bias` / `mlp_bias`); the refusal on bias-less layers is tested in the package's tests.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import BeftConfig


def make_llama_with_biases():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=models.VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, attention_bias=True, mlp_bias=True,
    )
    return LlamaForCausalLM(config)


LLAMA_WITH_BIASES = TinyModel(
    "llama-biases", make_llama_with_biases, models.LLAMA.inputs, requires=("transformers",)
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
