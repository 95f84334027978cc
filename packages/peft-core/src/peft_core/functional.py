"""Adapter operations on any model with injected adapter layers, `PeftModel` or not.

Integrations that inject adapters into a model in place (transformers' `add_adapter`, diffusers)
call these instead of `PeftModel` methods, as with Hugging Face PEFT's `peft.functional`.
"""

from __future__ import annotations

import warnings
from typing import Sequence

from torch import nn

from .mapping import inject_adapter_in_model
from .state_dict import get_peft_model_state_dict, set_peft_model_state_dict
from .tuners.layer import BaseTunerLayer, _entry_parameters
from .tuners.modules_to_save import ModulesToSaveWrapper

__all__ = [
    "cast_adapter_dtype",
    "delete_adapter",
    "get_peft_model_state_dict",
    "inject_adapter_in_model",
    "set_adapter",
    "set_peft_model_state_dict",
    "set_requires_grad",
]

_ADAPTER_MODULES = (BaseTunerLayer, ModulesToSaveWrapper)


def _names(adapter_names: str | Sequence[str]) -> list[str]:
    return [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)


def set_adapter(
    model: nn.Module,
    adapter_name: str | Sequence[str],
    inference_mode: bool = False,
    layer_cls: type[nn.Module] = BaseTunerLayer,
) -> None:
    """Activate `adapter_name` (one or several) in every adapter layer; merged layers are unmerged first.
    Only the active adapters' parameters train (none with `inference_mode=True`)."""
    for module in model.modules():
        if isinstance(module, ModulesToSaveWrapper):
            module.set_adapter(adapter_name, inference_mode=inference_mode)
        elif isinstance(module, layer_cls) and isinstance(module, BaseTunerLayer):
            if module.merged:
                warnings.warn("Unmerging the adapters of a merged layer before changing the active adapter.", stacklevel=2)
                module.unmerge()
            module.set_adapter(adapter_name, inference_mode=inference_mode)


def delete_adapter(
    model: nn.Module, adapter_name: str, prefix: str | None = None, layer_cls: type[nn.Module] = BaseTunerLayer
) -> list[str] | None:
    """Remove `adapter_name` from every adapter layer; returns the adapters left active (None if none).

    `prefix` (Hugging Face's signature: modules whose name contains it are the adapter's own
    containers) is accepted; layers are found by type here, so it changes nothing.
    """
    merged = sorted({adapter_name} & {n for m in model.modules() if isinstance(m, BaseTunerLayer) for n in m.merged_adapters})
    if merged:
        raise ValueError(f"Cannot delete adapter {adapter_name!r} while it is merged; call unmerge_adapter() first.")
    remaining: list[str] | None = None
    for module in model.modules():
        if isinstance(module, _ADAPTER_MODULES) and isinstance(module, (layer_cls, ModulesToSaveWrapper)):
            module.delete_adapter(adapter_name)
            if remaining is None and isinstance(module, BaseTunerLayer):
                remaining = list(module.active_adapters)
    return remaining


def set_requires_grad(model: nn.Module, adapter_names: str | Sequence[str], requires_grad: bool = True) -> None:
    """Turn gradients of the given adapters' parameters on or off; other adapters are left as they are."""
    wanted = set(_names(adapter_names))
    for module in model.modules():
        if not isinstance(module, _ADAPTER_MODULES):
            continue
        for attr in module.adapter_layer_names:
            container = getattr(module, attr, None)
            if container is None:
                continue
            for key, entry in container.items():
                if key in wanted:
                    for param in _entry_parameters(entry):
                        param.requires_grad_(requires_grad)


def cast_adapter_dtype(model: nn.Module, adapter_name: str, autocast_adapter_dtype: bool = True) -> None:
    """Keep `adapter_name`'s fp16/bf16 weights in fp32 (what `autocast_adapter_dtype=True` does on creation)."""
    if not autocast_adapter_dtype:
        return
    for module in model.modules():
        if isinstance(module, BaseTunerLayer) and module.has_adapter(adapter_name):
            module.cast_adapter_dtype(adapter_name, True)
