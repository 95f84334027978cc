"""Injecting `ParamWrapper`s for `LoraConfig.target_parameters`, and what the model must know about them.

- `create_param_layer`: wrap (or add an adapter to) the wrapper of one parameter; a second parameter
  of the same module wraps the first wrapper, in the module's parameter registration order.
- `check_same_parameter_targets`: every adapter of a model that targets parameters must target the
  same ones (which wrapper holds which parameter is encoded in the nesting, hence in the file keys).
- `warn_uncovered_experts`: `"all-linear"` adapts linear layers; stacked expert weights (3-D
  parameters) are not linear layers, so the user is told which ones were left out and how to add them.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from peft_core import BaseTunerLayer
from peft_core.errors import ConfigError
from peft_core.tuners.construction import place_module
from peft_core.tuners.matching import strip_base_layers
from torch import nn

from .layers.param import ParamWrapper, check_param_config


def create_param_layer(
    model: nn.Module,
    config: Any,
    adapter_name: str,
    holder_key: str,
    parameter_name: str,
    current_key: str,
    r: int,
    alpha: float,
) -> None:
    """Adapt `parameter_name` of the module at `holder_key` (a path in `model`) for `adapter_name`."""
    check_param_config(config, current_key)
    outer_key = strip_base_layers(holder_key)
    outer = model.get_submodule(outer_key)
    if isinstance(outer, BaseTunerLayer) and not isinstance(outer, ParamWrapper):
        raise ConfigError(
            f"target_parameters selected {current_key!r}, but its module {outer_key!r} is already adapted as a "
            f"{type(outer).__name__} (through target_modules). A module is adapted either as a whole or through "
            f"its parameters: remove it from target_modules (or the parameter from target_parameters)."
        )
    existing = _wrapper_of(outer, parameter_name)
    if existing is not None:
        if adapter_name in existing.lora_A:
            raise ConfigError(f"target_parameters selected {current_key!r} twice for adapter {adapter_name!r}.")
        existing.update_layer(adapter_name, r, alpha, config)
        return
    layer = ParamWrapper(outer, parameter_name)
    layer.update_layer(adapter_name, r, alpha, config)
    place_module(model, outer_key, layer)


def _wrapper_of(module: nn.Module, parameter_name: str) -> ParamWrapper | None:
    while isinstance(module, ParamWrapper):
        if module.parameter_name == parameter_name:
            return module
        module = module._modules["base_layer"]
    return None


def check_same_parameter_targets(configs: Mapping[str, Any], config: Any) -> None:
    targets = getattr(config, "target_parameters", None)
    if not targets:
        return
    for name, other in configs.items():
        theirs = getattr(other, "target_parameters", None)
        if other is not config and theirs and set(theirs) != set(targets):
            raise ConfigError(
                f"All adapters that use target_parameters must target the same parameters (the nesting of the "
                f"parameter wrappers, and so the saved keys, depend on it): the new adapter has {sorted(targets)}, "
                f"adapter {name!r} has {sorted(theirs)}."
            )


def expert_parameters(model: nn.Module) -> list[str]:
    """Names of 3-D parameters of modules that are not adapter layers (stacked expert weights), in the
    user's model's naming, that no `ParamWrapper` adapts yet."""
    adapted: set[tuple[int, str]] = set()
    for module in model.modules():
        if isinstance(module, ParamWrapper):
            adapted.add((id(module.get_base_layer()), module.parameter_name))
    found = []
    for holder, module in model.named_modules():
        if isinstance(module, BaseTunerLayer):
            continue
        for name, param in module._parameters.items():
            if param is not None and param.dim() == 3 and (id(module), name) not in adapted:
                found.append(f"{strip_base_layers(holder)}.{name}" if holder else name)
    return found


def warn_uncovered_experts(model: nn.Module, adapter_name: str) -> None:
    missing = expert_parameters(model)
    if not missing:
        return
    leaves = sorted({n.rsplit(".", 1)[-1] for n in missing})
    holders = sorted({n.rsplit(".", 1)[0].rsplit(".", 1)[-1] for n in missing if "." in n})
    example = [f"{holders[0]}.{leaf}" for leaf in leaves] if holders else leaves
    warnings.warn(
        f"target_modules='all-linear' (adapter {adapter_name!r}) adapts linear layers only; this model also has "
        f"{len(missing)} stacked expert weight(s) that are parameters, not linear layers, and stay unadapted "
        f"(e.g. {missing[0]!r}). To adapt them too, add target_parameters={example!r}.",
        UserWarning,
        stacklevel=4,
    )
