"""The layers a data-driven initialisation prepares: what `get_peft_model` will target, nn.Linear / Conv1D only.

Preprocessing runs on the plain model before `get_peft_model`, so it resolves `target_modules` the way
the tuner will (default targets of the model type, exclusions, modules_to_save).
"""

from __future__ import annotations

from typing import Any, Iterator

from peft_core.errors import ConfigError
from peft_core.tuners.matching import is_excluded, is_in_modules_to_save, matches_target
from torch import nn

from ..layers.base import is_transformers_conv1d
from ..targets import DEFAULT_TARGET_MODULES


def resolve_targets(model: nn.Module, config: Any, what: str) -> None:
    """Fill `config.target_modules` from the model type's defaults when it is None (as the tuner will)."""
    if config.target_modules is not None:
        return
    model_config = getattr(model, "config", None)
    model_type = getattr(model_config, "model_type", None)
    defaults = DEFAULT_TARGET_MODULES.get(model_type) if model_type else None
    if defaults is None:
        raise ConfigError(f"{what}: set target_modules (model type {model_type!r} has no default targets).")
    config.target_modules = defaults if isinstance(defaults, str) else set(defaults)


def linear_targets(model: nn.Module, config: Any) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) of every nn.Linear / transformers Conv1D the config targets."""
    for name, module in model.named_modules():
        if not name or not (isinstance(module, nn.Linear) or is_transformers_conv1d(module)):
            continue
        if is_excluded(getattr(config, "exclude_modules", None), name):
            continue
        if is_in_modules_to_save(getattr(config, "modules_to_save", None), name):
            continue
        if matches_target(config, name):
            yield name, module


def weight_out_in(module: nn.Module) -> Any:
    """The weight in (out, in) layout (transformers' Conv1D stores (in, out))."""
    weight = module.weight
    return weight.T if is_transformers_conv1d(module) else weight
