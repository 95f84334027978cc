"""OSF's default `target_modules` per transformers `model_type` (Hugging Face PEFT's table). Other
architectures fall back to every linear layer (`"all-linear"`), as in Hugging Face PEFT."""

from __future__ import annotations

from typing import Mapping

_ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj")

OSF_TARGETS: Mapping[str, tuple[str, ...] | str] = {
    "llama": _ALL_PROJECTIONS,
    "llama4": _ALL_PROJECTIONS,
    "mistral": _ALL_PROJECTIONS,
    "mixtral": _ALL_PROJECTIONS,
    "gemma": _ALL_PROJECTIONS,
    "gemma2": _ALL_PROJECTIONS,
    "gemma3_text": _ALL_PROJECTIONS,
    "qwen2": _ALL_PROJECTIONS,
    "qwen3": _ALL_PROJECTIONS,
    "phi": _ALL_PROJECTIONS,
    "gpt2": ("c_attn", "c_proj"),
    "bloom": ("query_key_value", "dense_4h_to_h"),
    "opt": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    "gptj": ("q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"),
    "gpt_neox": ("query_key_value", "dense_4h_to_h"),
    "falcon": ("query_key_value", "dense_4h_to_h"),
    "gpt_bigcode": ("c_attn", "c_proj"),
}
