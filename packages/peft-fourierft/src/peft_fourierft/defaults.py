"""Hugging Face PEFT 0.21.2's per-`model_type` FourierFT default targets: LoRA's table (peft-core's
`QUERY_VALUE_TARGETS`, Gemma 4's regex string included) with GPT-2 style models adapting `mlp.c_proj`."""

from __future__ import annotations

from typing import Mapping

from peft_core.default_targets import QUERY_VALUE_TARGETS

TARGET_MODULES: Mapping[str, tuple[str, ...] | str] = {
    **QUERY_VALUE_TARGETS,
    "gpt2": ("mlp.c_proj",),
    "gpt_bigcode": ("mlp.c_proj",),
}
