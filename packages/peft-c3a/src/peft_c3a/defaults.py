"""Hugging Face PEFT 0.21.2's per-`model_type` C3A default targets: LoRA's table (peft-core's
`QUERY_VALUE_TARGETS`) with GPT-2 and GPT-BigCode on `mlp.c_proj` (their `c_attn` is a Conv1D,
which C3A does not adapt)."""

from __future__ import annotations

from typing import Mapping

from peft_core.default_targets import QUERY_VALUE_TARGETS

TARGET_MODULES: Mapping[str, tuple[str, ...] | str] = {
    **QUERY_VALUE_TARGETS,
    "gpt2": ("mlp.c_proj",),
    "gpt_bigcode": ("mlp.c_proj",),
}
