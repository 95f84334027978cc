"""Default `target_modules` per transformers `model_type`, shared by method packages.

Most low-rank and orthogonal methods (LoRA and its relatives) adapt the attention query/value
projections by default; Hugging Face PEFT keeps one copy of this table per method. Method packages
pass it (or their own table) to `register_peft_method(default_target_modules=...)`. A value is a
tuple of module names or one regex string (matched against full module names).
"""

from __future__ import annotations

from typing import Mapping

# Each target list once, with the model types that use it (Hugging Face PEFT 0.21.2's LoRA table).
_QUERY_VALUE_GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("q", "v"), ("t5", "mt5")),
    (
        ("q_proj", "v_proj"),
        (
            "bart", "opt", "gptj", "gpt_neo", "llama", "llama4", "mistral", "mixtral", "stablelm",
            "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3",
        ),
    ),
    (("c_attn",), ("gpt2", "gpt_bigcode")),
    (("query_key_value",), ("bloom", "gpt_neox", "chatglm", "RefinedWebModel", "RefinedWeb", "falcon")),
    (("q", "v", "q_proj", "v_proj"), ("blip-2",)),
    (("query", "value"), ("bert", "roberta", "xlm-roberta", "electra", "layoutlm")),
    (("query_proj", "value_proj"), ("deberta-v2",)),
    (("in_proj",), ("deberta",)),
    (("Wqkv",), ("mpt",)),
    (("c_proj", "c_attn"), ("btlm",)),
    (("qkv_proj",), ("codegen",)),
    (("q_proj", "v_proj", "fc1", "fc2"), ("phi",)),
    (("q_proj", "k_proj", "v_proj", "o_proj"), ("nemotron_h",)),
    (("key", "value", "receptance", "output"), ("rwkv",)),
    (("r_proj", "k_proj", "v_proj", "o_proj", "key", "value"), ("rwkv7",)),
)

QUERY_VALUE_TARGETS: Mapping[str, tuple[str, ...] | str] = {
    **{model_type: targets for targets, model_types in _QUERY_VALUE_GROUPS for model_type in model_types},
    "gemma4": r".*language_model\..*\.(q_proj|v_proj)",
}
