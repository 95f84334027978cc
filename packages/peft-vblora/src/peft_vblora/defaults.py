"""VB-LoRA's default `target_modules` per transformers `model_type` (Hugging Face PEFT's table): LoRA's
query/value table for the architectures HF lists, with more projections for a few of them."""

from __future__ import annotations

from typing import Mapping

from peft_core.default_targets import QUERY_VALUE_TARGETS

_AS_LORA = (
    "gpt2", "bloom", "gptj", "gpt_neox", "gpt_neo", "llama", "llama4", "bert", "roberta", "gpt_bigcode", "deberta",
    "gemma", "gemma2", "gemma3_text", "gemma4", "qwen2", "qwen3", "nemotron_h",
)
_ATTENTION_AND_FFN = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")

VBLORA_TARGETS: Mapping[str, tuple[str, ...] | str] = {
    **{model_type: QUERY_VALUE_TARGETS[model_type] for model_type in _AS_LORA},
    "t5": ("q", "k", "v", "o", "wi", "wo"),
    "mt5": ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),
    "bart": _ATTENTION_AND_FFN,
    "opt": _ATTENTION_AND_FFN,
    "deberta-v2": ("query_proj", "key_proj", "value_proj", "dense"),
}
