"""Linear-like targets: `nn.Linear` and transformers' GPT-2 `Conv1D` (weight stored `[in, out]`).

Methods that adapt both read the layer sizes and reconcile the config's `fan_in_fan_out` flag the
way Hugging Face PEFT does (it is switched on for `Conv1D` and off for `nn.Linear`, with a warning,
and the corrected value is what gets saved). transformers is never imported for this.
"""

from __future__ import annotations

import warnings

from torch import nn


def is_transformers_conv1d(module: nn.Module) -> bool:
    """transformers' `Conv1D` (GPT-2 and relatives, subclasses too), recognised by class name and module."""
    cls = type(module)
    found = _CONV1D_CLASSES.get(cls)
    if found is None:  # cached per class: injection asks once per targeted module
        found = _CONV1D_CLASSES[cls] = any(
            c.__name__ == "Conv1D" and c.__module__.startswith("transformers") for c in cls.__mro__
        )
    return found


_CONV1D_CLASSES: dict[type, bool] = {}


def linear_features(module: nn.Module) -> tuple[int, int] | None:
    """`(in_features, out_features)` of an `nn.Linear` or a `Conv1D`; None for anything else."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if is_transformers_conv1d(module):
        shape = getattr(module.weight, "ds_shape", None) or module.weight.shape  # DeepSpeed ZeRO-3 keeps it apart
        return int(shape[0]), int(shape[1])
    return None


def reconcile_fan_in_fan_out(config: object, target: nn.Module, stacklevel: int = 3) -> None:
    """Set `config.fan_in_fan_out` to match `target` (True for `Conv1D`, False for `nn.Linear`), warning
    when it changes, as Hugging Face PEFT does. `stacklevel` counts from this function (3: the caller of
    the tuner method that calls it)."""
    if isinstance(target, nn.Linear) and getattr(config, "fan_in_fan_out", False):
        warnings.warn(
            "fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. Setting fan_in_fan_out to False.",
            UserWarning,
            stacklevel=stacklevel,
        )
        config.fan_in_fan_out = False
    elif is_transformers_conv1d(target) and not getattr(config, "fan_in_fan_out", False):
        warnings.warn(
            "fan_in_fan_out is set to False but the target module is `Conv1D`. Setting fan_in_fan_out to True.",
            UserWarning,
            stacklevel=stacklevel,
        )
        config.fan_in_fan_out = True
