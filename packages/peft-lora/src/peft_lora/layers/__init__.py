"""LoRA adapter layers, one module per wrapped layer type, and the dispatch from a target module to its layer."""

from __future__ import annotations

from torch import nn

from .base import LoraLayer, is_transformers_conv1d
from .conv import Conv1d, Conv2d, Conv3d
from .dora import DoraMagnitude
from .embedding import Embedding
from .linear import Linear

SUPPORTED_LAYERS = (
    "torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d and transformers' Conv1D"
)


def layer_class_for(module: nn.Module) -> type[LoraLayer] | None:
    """The LoRA layer class that wraps `module`, or None if LoRA does not support its type."""
    if isinstance(module, nn.Embedding):
        return Embedding
    if isinstance(module, nn.Conv2d):
        return Conv2d
    if isinstance(module, nn.Conv3d):
        return Conv3d
    if isinstance(module, nn.Conv1d):
        return Conv1d
    if isinstance(module, nn.Linear) or is_transformers_conv1d(module):
        return Linear
    return None


__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "DoraMagnitude",
    "Embedding",
    "Linear",
    "LoraLayer",
    "SUPPORTED_LAYERS",
    "is_transformers_conv1d",
    "layer_class_for",
]
