"""LoRA variants: per-adapter behaviour that replaces plain LoRA's `result + s·B(A(x))` on a layer.

A layer keeps one `LoraVariant` per adapter that uses one (`LoraLayer.lora_variant`); the plain path
(and its fast paths) runs for every other adapter. `variant_for(config, layer)` picks the variant a
config asks for on a layer, or None, and refuses combinations and layer types that can't work.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch


class LoraVariant:
    """Base class: how one adapter of one layer computes, and what it refuses."""

    #: why this variant can't be merged into the base weights (None: it can, as plain LoRA)
    merge_refusal: str | None = None

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        """`result` (the base output for `x`) with adapter `name` applied; `rows` are the batch rows `x`
        holds in a mixed-adapter batch (None: the whole batch)."""
        raise NotImplementedError


def variant_for(config: Any, layer: Any) -> LoraVariant | None:
    """The variant `config` asks for on `layer` (None for plain LoRA)."""
    if getattr(config, "alora_invocation_tokens", None) is not None:
        from .alora import ALoraVariant

        return ALoraVariant.for_layer(config, layer)
    return None


__all__ = ["LoraVariant", "variant_for"]
