"""Hugging Face PEFT 0.21.2's per-`model_type` FRoD default targets: VeRA's table (LoRA's, with `phi`
narrowed to the q/v projections) plus ViT's `query` / `value`."""

from __future__ import annotations

from typing import Mapping

from peft_core.default_targets import QUERY_VALUE_TARGETS

TARGET_MODULES: Mapping[str, tuple[str, ...] | str] = {
    **QUERY_VALUE_TARGETS,
    "phi": ("q_proj", "v_proj"),
    "vit": ("query", "value"),
}
