"""LoRA adapter layers, one module per wrapped layer type, and the dispatch from a target module to its layer.

The dispatch goes through peft-core's layer-dispatch registry (method "lora"): the plain torch layers
are registered here, the quantized ones in `peft_lora.quantized`, and other packages can add their
own (`peft_core.register_layer_dispatcher("lora", ...)`). Quantized modules never reach the plain
dispatcher, so a bitsandbytes `Linear4bit` (an `nn.Linear` subclass) is not wrapped as a plain Linear.
"""

from __future__ import annotations

from typing import Any

from peft_core import DispatchRequest, dispatch_layer, register_layer_dispatcher
from torch import nn

from .base import LoraLayer, is_transformers_conv1d
from .conv import Conv1d, Conv2d, Conv3d
from .dora import DoraMagnitude
from .embedding import Embedding
from .linear import Linear
from .mha import MultiheadAttention, dispatch_multihead_attention

METHOD = "lora"
SUPPORTED_LAYERS = (
    "torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d and transformers' Conv1D "
    "(and quantized linear layers of bitsandbytes, torchao and HQQ)"
)


def dispatch_torch_layer(request: DispatchRequest) -> type[LoraLayer] | None:
    """Plain (non-quantized) torch layers and transformers' Conv1D."""
    module = request.module
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


register_layer_dispatcher(METHOD, "torch", dispatch_torch_layer)
register_layer_dispatcher(METHOD, "torch-multihead-attention", dispatch_multihead_attention)


def layer_class_for(
    module: nn.Module, *, key: str = "", config: Any = None, model: nn.Module | None = None
) -> type[LoraLayer] | None:
    """The LoRA layer class that wraps `module`, or None if LoRA does not support its type.

    Raises `peft_core.UnsupportedLayerError` for a quantized module no dispatcher handles."""
    return dispatch_layer(METHOD, module, key=key, config=config, model=model)


__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "DoraMagnitude",
    "Embedding",
    "Linear",
    "LoraLayer",
    "METHOD",
    "MultiheadAttention",
    "SUPPORTED_LAYERS",
    "dispatch_torch_layer",
    "is_transformers_conv1d",
    "layer_class_for",
]
