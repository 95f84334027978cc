"""Which modules of a model an adapter config selects, and the `modules_to_save` copies: the matching half
of `BaseTuner.inject_adapter`, kept apart from adapter management (its methods delegate here)."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from torch import nn

from ..config import PeftConfig
from ..errors import ConfigError
from ..patterns import field_label
from .layer import BaseTunerLayer
from .matching import (
    describe_candidates,
    is_excluded,
    is_in_modules_to_save,
    is_linear_like,
    matches_target,
    output_head_names,
)
from .modules_to_save import ModulesToSaveWrapper


def model_type_of(model: nn.Module) -> str | None:
    """The transformers `model_type` of `model` (None for plain modules), without importing transformers."""
    config = getattr(model, "config", None)
    if isinstance(config, Mapping):
        return config.get("model_type")
    return getattr(config, "model_type", None)


def fill_default_targets(config: PeftConfig, model: nn.Module) -> PeftConfig:
    """`config` with an unset `target_modules` filled from its method's registered defaults for the
    model's `model_type` (left unset when only `target_parameters` are targeted)."""
    if getattr(config, "target_modules", "") is None:
        from ..registry import method_for_config

        method = method_for_config(config)
        model_type = model_type_of(model)
        defaults = method.default_target_modules.get(model_type) if model_type else None
        if not defaults and getattr(config, "target_parameters", None):
            return config  # only parameters are targeted
        if not defaults:
            names = [n for n, _ in model.named_modules()]
            raise ValueError(
                f"{type(config).__name__}.target_modules is not set and {method.name!r} has no default targets "
                f"for model_type {model_type!r}. Set target_modules to module names, e.g. from: "
                f"{describe_candidates(names)}."
            )
        config.target_modules = defaults if isinstance(defaults, str) else set(defaults)
    return config


def match_targets(config: PeftConfig, named: Sequence[tuple[str, nn.Module]]) -> tuple[list[str], int]:
    containers: set[str] = set()  # tuner layers / wrappers: their insides are never targets
    inside: set[str] = set()
    matched: list[str] = []
    excluded = 0
    exclude = getattr(config, "exclude_modules", None)
    to_save = getattr(config, "modules_to_save", None)
    exclude_field, to_save_field = field_label(config, "exclude_modules"), field_label(config, "modules_to_save")
    for key, module in named:
        if not key:
            continue
        parent_key = key.rpartition(".")[0]
        if parent_key in containers or parent_key in inside:
            inside.add(key)
            continue
        if isinstance(module, (BaseTunerLayer, ModulesToSaveWrapper)):
            containers.add(key)
        if isinstance(module, ModulesToSaveWrapper) or is_in_modules_to_save(to_save, key, to_save_field):
            continue
        if not matches_target(config, key):
            continue
        if is_excluded(exclude, key, exclude_field):
            excluded += 1
            continue
        matched.append(key)
    return matched, excluded


def raise_nothing_matched(
config: PeftConfig, named: Sequence[tuple[str, nn.Module]], excluded: int, model: nn.Module
) -> None:
    names = [n for n, _ in named]
    if excluded:
        raise ConfigError(
            f"All modules matched by target_modules={config.target_modules!r} are excluded by "
            f"exclude_modules={getattr(config, 'exclude_modules', None)!r}; nothing left to adapt."
        )
    hint = ""
    if getattr(config, "layers_to_transform", None) is not None:
        hint = f" with layers_to_transform={config.layers_to_transform!r}"
        if getattr(config, "layers_pattern", None):
            hint += f" and layers_pattern={config.layers_pattern!r}"
    if not config.target_modules and not getattr(config, "target_parameters", None):
        raise ConfigError(
            f"{type(config).__name__} has neither target_modules nor target_parameters; set one of them. "
            f"Module names that exist: {describe_candidates(names)}."
        )
    if getattr(config, "target_parameters", None):
        hint += f", and target_parameters={config.target_parameters!r} matched no parameter"
    raise ConfigError(
        f"Target modules {config.target_modules!r}{hint} not found in the base model "
        f"({type(model).__name__}). A list entry must equal a module name or its dotted suffix; a string "
        f"is a regex matched against the full name. Module names that exist: {describe_candidates(names)}."
    )


def all_linear_names(model: nn.Module, named: Sequence[tuple[str, nn.Module]], config: PeftConfig) -> set[str]:
    names_by_id = {id(m): n for n, m in named}
    skip = output_head_names(model, names_by_id, config.task_type)
    containers: list[str] = [n for n, m in named if isinstance(m, BaseTunerLayer)]
    names = {
        n
        for n, m in named
        if n and n not in skip and is_linear_like(m) and not any(n.startswith(c + ".") for c in containers)
    }
    if not names:
        raise ValueError(f"target_modules='all-linear' found no linear layer in {type(model).__name__}.")
    return names


def wrap_modules_to_save(config: PeftConfig, adapter_name: str, named: Sequence[tuple[str, nn.Module]]) -> None:
    entries = getattr(config, "modules_to_save", None)
    if not entries:
        return
    by_name = dict(named)
    wrapped: list[str] = []
    for key, module in named:
        if not key or not any(key.endswith(entry) for entry in entries):
            continue
        if any(key.startswith(w + ".") for w in wrapped):
            continue
        if any(isinstance(m, (ModulesToSaveWrapper, BaseTunerLayer)) for m in _ancestors(by_name, key)):
            continue
        if adapter_name in dict(module.named_children()):
            raise ValueError(
                f"Adapter name {adapter_name!r} equals a submodule name of modules_to_save module {key!r}; "
                f"rename the adapter."
            )
        if isinstance(module, ModulesToSaveWrapper):
            module.update(adapter_name)
        else:
            parent_key, _, child = key.rpartition(".")
            setattr(by_name[parent_key], child, ModulesToSaveWrapper(module, adapter_name))
        wrapped.append(key)


def _adapter_names_of(module: Any) -> list[str]:
    """Adapter names held by an adapter module (tuner layer, modules_to_save wrapper, prompt encoders)."""
    names = getattr(module, "adapter_names", None)
    if callable(names):
        return list(names())
    if isinstance(module, ModulesToSaveWrapper):
        return list(module.modules_to_save)
    return list(module.keys()) if isinstance(module, nn.ModuleDict) else []


def nested_layers(layer: BaseTunerLayer) -> list[BaseTunerLayer]:
    """`layer` and the adapter layers nested inside it (a mixed-method model), outermost first."""
    chain = [layer]
    inner = layer._modules.get("base_layer")
    while isinstance(inner, BaseTunerLayer):
        chain.append(inner)
        inner = inner._modules.get("base_layer")
    return chain


def _ancestors(by_name: Mapping[str, nn.Module], key: str) -> Iterator[nn.Module]:
    parts = key.split(".")
    for i in range(1, len(parts)):
        module = by_name.get(".".join(parts[:i]))
        if module is not None:
            yield module
