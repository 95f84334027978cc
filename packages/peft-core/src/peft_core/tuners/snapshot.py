"""`ModelSnapshot`: what wrapping a model changes on it, recorded so that a failed wrap or load can put the
user's model back as it was; and `outer_modules`, the walk over modules outside any adapter layer."""

from __future__ import annotations

from typing import Iterator

from torch import nn

from .layer import BaseTunerLayer
from .modules_to_save import ModulesToSaveWrapper
from .walk import modules as walk_modules
from .walk import parameters as walk_parameters


def outer_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Modules that are not inside an adapter layer or wrapper (those are parents to unload from)."""
    stack: list[tuple[str, nn.Module]] = [("", model)]
    while stack:
        key, module = stack.pop()
        yield key, module
        for name, child in module.named_children():
            if not isinstance(child, (BaseTunerLayer, ModulesToSaveWrapper)):
                stack.append((f"{key}.{name}" if key else name, child))


class ModelSnapshot:
    """What wrapping a model changes on it (adapter modules put in, `requires_grad` flags, the
    `peft_config` attribute), recorded before, so a wrap or load that fails part-way can hand the
    user's model back as it was."""

    def __init__(self, model: nn.Module) -> None:
        self._adapter_modules = {
            id(m) for m in walk_modules(model) if isinstance(m, (BaseTunerLayer, ModulesToSaveWrapper))
        }
        self._requires_grad = [(p, p.requires_grad) for p in walk_parameters(model)]
        self._peft_config = model.__dict__.get("peft_config", _MISSING)
        self._peft_config_items = dict(self._peft_config) if isinstance(self._peft_config, dict) else None

    def restore(self, model: nn.Module) -> None:
        for _, parent in list(outer_modules(model)):
            for name, child in list(parent.named_children()):
                if not isinstance(child, (BaseTunerLayer, ModulesToSaveWrapper)) or id(child) in self._adapter_modules:
                    continue
                base = child  # peel only the layers added since the snapshot (a mixed model nests new on old)
                while isinstance(base, (BaseTunerLayer, ModulesToSaveWrapper)) and id(base) not in self._adapter_modules:
                    base = base.unwrapped() if isinstance(base, ModulesToSaveWrapper) else base._modules["base_layer"]
                setattr(parent, name, base)
        for param, flag in self._requires_grad:
            param.requires_grad_(flag)
        if self._peft_config is _MISSING:
            model.__dict__.pop("peft_config", None)
        else:
            if self._peft_config_items is not None:  # the same dict may have been added to: put its entries back
                self._peft_config.clear()
                self._peft_config.update(self._peft_config_items)
            model.__dict__["peft_config"] = self._peft_config


_MISSING = object()
