"""Per-adapter containers and sizes an adapter layer declares instead of creating them itself.

Almost every layer's `__init__` made the same empty containers (one per name in `adapter_layer_names` /
`other_param_names`) and read `in_features` / `out_features` off its base layer. A layer class that
sets `container_types` gets them made by `BaseTunerLayer.__init__`; one that sets `features_from_base`
gets its sizes. Layers that create their own containers (the older way) are left alone.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn
from torch.nn.modules.conv import _ConvNd

from .buffers import BufferDict
from .construction import new_module, register_module
from .linear_targets import linear_features


def saved_buffers() -> BufferDict:
    """A `BufferDict` whose tensors are saved with the adapter (masks, indices, norms)."""
    return BufferDict(persistent=True)


def unsaved_buffers() -> BufferDict:
    """A `BufferDict` whose tensors are derived again on load, never saved."""
    return BufferDict(persistent=False)


def create_declared_containers(layer: nn.Module, types: Mapping[str, Callable[[], Any]]) -> None:
    """Give `layer` an empty container for every name in its `adapter_layer_names` (default
    `nn.ParameterDict`) and `other_param_names` (default a plain `dict`); `types` names the exceptions
    (`nn.ModuleDict`, `saved_buffers`, `list`, ...)."""
    state = layer.__dict__
    for names, default in ((layer.adapter_layer_names, nn.ParameterDict), (layer.other_param_names, dict)):
        for name in names:
            value = new_module(types.get(name, default))  # type: ignore[arg-type]
            if isinstance(value, nn.Module):
                register_module(layer, name, value)
            else:
                state[name] = value  # what nn.Module.__setattr__ does for a plain value, without its checks


def set_base_features(layer: nn.Module, base: nn.Module) -> None:
    """`layer.in_features` / `out_features` from an `nn.Linear` or transformers' `Conv1D` base, or the channels
    of an `nn.Conv1d/2d/3d` one."""
    features = linear_features(base)
    if features is None and isinstance(base, _ConvNd):
        features = base.in_channels, base.out_channels
    if features is None:
        raise TypeError(
            f"{type(layer).__name__} adapts nn.Linear, transformers' Conv1D and nn.ConvNd layers, not "
            f"{type(base).__name__}: exclude this module from target_modules."
        )
    layer.__dict__["in_features"], layer.__dict__["out_features"] = features


def dropout_module(p: float) -> nn.Module:
    """The dropout an adapter applies to its input: `nn.Dropout(p)`, or `nn.Identity` when `p` is 0."""
    return nn.Dropout(p=p) if p > 0.0 else new_module(nn.Identity)


def refer_to_shared(layer: nn.Module, **stores: Any) -> None:
    """Keep plain references on `layer` to the tuner's shared stores (not submodules: the tuner saves and
    moves them once, not once per layer)."""
    layer.__dict__.update(stores)


def require_sizes_divisible(layer: nn.Module, n: int, setting: str, why: str) -> None:
    """Refuse (ConfigError) a layer whose `in_features` or `out_features` the config value `setting`=`n` does not
    divide: methods that cut a layer's sizes into `n` pieces. `why` says what the method does with `n`."""
    for what in ("in_features", "out_features"):
        size = getattr(layer, what)
        if size % n:
            from ..errors import ConfigError

            raise ConfigError(
                f"{why}, but a targeted layer has {what}={size}, not a multiple of {setting}={n}. Choose a "
                f"{setting} dividing every target's sizes."
            )
