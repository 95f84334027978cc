"""Writing tensors into a model's tensors by name, all or nothing: every shape is checked before anything
is copied (base weights from a state dict, a method's parameters from another adapter's file)."""

from __future__ import annotations

from typing import Mapping

import torch

__all__ = ["copy_into_", "shape_mismatches"]


def shape_mismatches(
    targets: Mapping[str, torch.Tensor], values: Mapping[str, torch.Tensor]
) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """`(key, given shape, target shape)` for each key of `values` whose target has another shape, in the
    order of `values`; keys without a target are left to the caller."""
    return [
        (key, tuple(value.shape), tuple(targets[key].shape))
        for key, value in values.items()
        if key in targets and tuple(value.shape) != tuple(targets[key].shape)
    ]


def copy_into_(targets: Mapping[str, torch.Tensor], values: Mapping[str, torch.Tensor]) -> None:
    """Copy each of `values` into the target of its key (converted to the target's dtype and device),
    without recording autograd; keys without a target are skipped. Check `shape_mismatches` first."""
    with torch.no_grad():
        for key, value in values.items():
            if key in targets:
                targets[key].copy_(value)
