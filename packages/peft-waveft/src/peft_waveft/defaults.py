"""Hugging Face PEFT 0.21.2's per-`model_type` WaveFT default targets: LoRA's table (peft-core's
`QUERY_VALUE_TARGETS`) with GPT-2 / GPT-BigCode on `mlp.c_proj`, without `btlm`, `rwkv`, `rwkv7`."""

from __future__ import annotations

from typing import Mapping

from peft_core.default_targets import QUERY_VALUE_TARGETS

TARGET_MODULES: Mapping[str, tuple[str, ...] | str] = {
    **{k: v for k, v in QUERY_VALUE_TARGETS.items() if k not in ("btlm", "rwkv", "rwkv7")},
    "gpt2": ("mlp.c_proj",),
    "gpt_bigcode": ("mlp.c_proj",),
}
