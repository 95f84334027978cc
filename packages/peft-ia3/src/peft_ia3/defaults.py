"""Hugging Face PEFT 0.21.2's per-`model_type` (IA)³ defaults: targets, and which of them are feed-forward.

Each row states the model types sharing one default once: their targets outside the feed-forward block,
then the feed-forward ones (`TARGET_MODULES` lists both, in that order, as Hugging Face PEFT does).
"""

from __future__ import annotations

# (model types, targets outside the feed-forward block, feed-forward targets)
_DEFAULTS: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (("t5",), ("k", "v"), ("wo",)),
    (("mt5",), ("k", "v", "wi_1"), ()),
    (("gpt2", "gpt_bigcode"), ("c_attn",), ("mlp.c_proj",)),
    (("bloom",), ("query_key_value",), ("mlp.dense_4h_to_h",)),
    (("gpt_neox", "RefinedWebModel", "RefinedWeb", "falcon"), ("query_key_value",), ("dense_4h_to_h",)),
    (("roberta", "bert"), ("key", "value"), ("output.dense",)),
    (("deberta-v2",), ("key_proj", "value_proj"), ("output.dense",)),
    (("deberta",), ("in_proj",), ("output.dense",)),
    (("opt",), ("q_proj", "k_proj"), ("fc2",)),
    (("bart", "phi"), ("q_proj", "v_proj"), ("fc2",)),
    (("gptj",), ("q_proj", "v_proj"), ("fc_out",)),
    (("gpt_neo",), ("q_proj", "v_proj"), ("c_proj",)),
    (("llama", "mistral"), ("k_proj", "v_proj"), ("down_proj",)),
    (("mixtral",), ("k_proj", "v_proj"), ("w2",)),
    (("llama4", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3"), ("q_proj", "v_proj"), ("down_proj",)),
)

TARGET_MODULES: dict[str, list[str]] = {
    model_type: [*other, *feedforward] for model_types, other, feedforward in _DEFAULTS for model_type in model_types
}

FEEDFORWARD_MODULES: dict[str, list[str]] = {
    model_type: list(feedforward) for model_types, _, feedforward in _DEFAULTS for model_type in model_types
}
