"""Cheap construction of the small modules adapter layers are made of.

Creating an adapter builds several modules per targeted layer (the layer itself, its per-adapter
containers, the factors, a dropout); `nn.Module.__init__` costs ~5 µs (seventeen attribute sets
through `object.__setattr__` plus a usage-log call), `parent.name = module` ~3 µs. On a model with a
few hundred targets that is a large part of `get_peft_model`. These helpers produce the same
objects (same class, same `__dict__` keys, fresh containers) without that overhead, and fall back to
torch's own code whenever something could observe the difference (patched constructors, module
registration hooks).
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)

_MODULE_INIT = nn.Module.__init__
# Classes whose __init__ (called without arguments) does nothing but nn.Module.__init__.
_PLAIN_INITS = {cls: cls.__init__ for cls in (nn.Module, nn.ModuleDict, nn.Identity)}


def _module_template() -> list[tuple[str, Any, Any]]:
    """(attribute, container type or None, value) of a freshly initialised nn.Module."""
    proto = nn.Module()
    return [(k, type(v) if isinstance(v, (dict, set, list)) else None, v) for k, v in proto.__dict__.items()]


_TEMPLATE = _module_template()


def init_module(module: nn.Module) -> None:
    """`nn.Module.__init__(module)`: the same attributes, each container a fresh empty one."""
    if nn.Module.__init__ is not _MODULE_INIT:  # patched (e.g. by a framework's init context): use it
        nn.Module.__init__(module)
        return
    state = module.__dict__
    for key, container, value in _TEMPLATE:
        state[key] = container() if container is not None else value


def new_module(cls: type[M]) -> M:
    """`cls()` for `nn.Module`, `nn.ModuleDict` and `nn.Identity` (any other class is simply called)."""
    init = _PLAIN_INITS.get(cls)
    if init is None or cls.__init__ is not init:  # another class, or a patched constructor
        return cls()
    module = cls.__new__(cls)
    init_module(module)
    return module


def register_module(parent: nn.Module, name: str, module: nn.Module) -> None:
    """`parent.add_module(name, module)` (what `parent.<name> = module` and `ModuleDict[name] = module`
    do): stored directly when torch would only store it (no global module registration hooks, a
    plain new-or-replaced submodule name), which saves ~2.5 µs a module."""
    if (
        torch.nn.modules.module._global_module_registration_hooks
        or not name
        or "." in name
        or name in parent.__dict__
        or hasattr(type(parent), name)
    ):
        parent.add_module(name, module)
    else:
        parent._modules[name] = module


def place_module(model: nn.Module, key: str, module: nn.Module) -> None:
    """Put `module` where `key` (a dotted path) points in `model`: registered as the submodule it replaces,
    or set as a plain attribute where the parent holds something else there (a parameter wrapper's host)."""
    parent_key, _, child = key.rpartition(".")
    parent = model.get_submodule(parent_key)
    if child in parent._modules:
        register_module(parent, child, module)
    else:
        setattr(parent, child, module)
