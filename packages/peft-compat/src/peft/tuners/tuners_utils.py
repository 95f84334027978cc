"""`peft.tuners.tuners_utils`: the tuner and layer base classes (peft-core's) and the functional helpers."""

from __future__ import annotations

from peft_core import BaseTuner, BaseTunerLayer
from peft_core.functional import cast_adapter_dtype, delete_adapter, set_adapter, set_requires_grad
from peft_core.tuners.matching import matches_target

from ..utils.other import ModulesToSaveWrapper


def check_target_module_exists(config: object, key: str) -> bool:
    """Whether module `key` is targeted by `config.target_modules` (and the layer selection), as peft-core matches."""
    return bool(matches_target(config, key))


__all__ = [
    "BaseTuner",
    "BaseTunerLayer",
    "ModulesToSaveWrapper",
    "cast_adapter_dtype",
    "check_target_module_exists",
    "delete_adapter",
    "set_adapter",
    "set_requires_grad",
]
