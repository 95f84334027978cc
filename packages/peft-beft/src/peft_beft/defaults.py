"""Hugging Face PEFT 0.21.2's per-`model_type` BEFT default targets: the value projections only."""

from __future__ import annotations

from typing import Mapping

TARGET_MODULES: Mapping[str, tuple[str, ...] | str] = {
    "t5": ("v",),
    "mt5": ("v",),
    "roberta": ("value",),
    "opt": ("v_proj",),
    "gptj": ("v_proj",),
    "gpt_neo": ("v_proj",),
    "bart": ("v_proj",),
    "llama": ("v_proj",),
    "llama4": ("v_proj",),
    "mistral": ("v_proj",),
    "mixtral": ("v_proj",),
    "bert": ("value",),
    "deberta-v2": ("value_proj",),
    "phi": ("v_proj",),
    "gemma": ("v_proj",),
    "gemma2": ("v_proj",),
    "gemma3_text": ("v_proj",),
    "qwen2": ("v_proj",),
    "qwen3": ("v_proj",),
}
