"""The base model's own tensors of an adapted model, under the keys the unadapted model has.

Adapter layers keep the wrapped module at `base_layer` and `modules_to_save` wrappers at
`original_module`; these functions see through both, structurally (no key-string guessing), so a
base-model checkpoint can be read from or written into a model that carries adapters.
"""

from __future__ import annotations

from typing import Iterator, Mapping, NamedTuple

import torch
from torch import nn

from .errors import PeftError
from .tensor_copy import copy_into_, shape_mismatches
from .tuners.layer import BaseTunerLayer
from .tuners.modules_to_save import ModulesToSaveWrapper
from .tuners.tuner import BaseTuner


class BaseStateDictMismatch(PeftError, RuntimeError):
    """A base-model state dict does not fit the model's base weights."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def _root(model: nn.Module) -> nn.Module:
    from .peft_model import PeftModel

    if isinstance(model, PeftModel):
        return model.get_base_model()
    if isinstance(model, BaseTuner):
        return model.model
    return model  # a model with adapters injected in place


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _named_base_tensors(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(module, BaseTunerLayer):
        yield from _named_base_tensors(module.get_base_layer(), prefix)
        return
    if isinstance(module, ModulesToSaveWrapper):
        yield from _named_base_tensors(module.original_module, prefix)
        return
    for name, param in module._parameters.items():
        if param is not None:
            yield _join(prefix, name), param
    for name, buf in module._buffers.items():
        if buf is not None and name not in module._non_persistent_buffers_set:
            yield _join(prefix, name), buf
    for name, child in module._modules.items():
        if child is not None:
            yield from _named_base_tensors(child, _join(prefix, name))


def get_base_model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base model's parameters and persistent buffers, keyed as in the model before adapters were added."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in _named_base_tensors(_root(model)):
        out.setdefault(key, tensor.detach())
    return out


def set_base_model_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> IncompatibleKeys:
    """Copy `state_dict` (keys of the unadapted model) into the base weights; adapters are untouched.

    Returns the missing and unexpected keys; with `strict=True` any of them raises before anything is copied.
    """
    targets: dict[str, torch.Tensor] = {}
    for key, tensor in _named_base_tensors(_root(model)):
        targets.setdefault(key, tensor)
    missing = [k for k in targets if k not in state_dict]
    unexpected = [k for k in state_dict if k not in targets]
    wrong_shape = [f"{k}: {given} vs {own}" for k, given, own in shape_mismatches(targets, state_dict)]
    if wrong_shape:
        raise BaseStateDictMismatch(f"Base weights of the wrong shape (given vs model): {'; '.join(wrong_shape[:5])}.")
    if strict and (missing or unexpected):
        raise BaseStateDictMismatch(
            f"The state dict does not fit the base model: missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}. Pass strict=False to load the "
            f"matching keys."
        )
    copy_into_(targets, state_dict)
    return IncompatibleKeys(missing_keys=missing, unexpected_keys=unexpected)
