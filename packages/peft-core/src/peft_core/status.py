"""`get_layer_status` / `get_model_status`: what each adapter layer holds, is doing, and trains.

Same fields and rules as Hugging Face PEFT's functions of the same names, so code that prints or
checks them (tutorials, debugging helpers) works unchanged. A value that differs between parameters
or layers is reported as `"irregular"`.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .tuners.layer import BaseTunerLayer
from .tuners.modules_to_save import ModulesToSaveWrapper
from .tuners.tuner import BaseTuner

Irregular = Literal["irregular"]


@dataclass
class TunerLayerStatus:
    name: str
    module_type: str
    enabled: bool
    active_adapters: list[str]
    merged_adapters: list[str]
    requires_grad: dict[str, bool | Irregular]
    available_adapters: list[str]
    devices: dict[str, list[str]]
    quantization_backend: str | None


@dataclass
class TunerModelStatus:
    base_model_type: str
    adapter_model_type: str
    peft_types: dict[str, str]
    trainable_params: int
    total_params: int
    num_adapter_layers: int
    enabled: bool | Irregular
    active_adapters: list[str] | Irregular
    merged_adapters: list[str] | Irregular
    requires_grad: dict[str, bool | Irregular]
    available_adapters: list[str]
    devices: dict[str, list[str]]
    quantization_backend: str | None | Irregular


def _all_or_irregular(values: list) -> bool | Irregular:
    if all(v is True for v in values):
        return True
    if all(v is False for v in values):
        return False
    return "irregular"


def _entries(module: nn.Module, attrs: tuple[str, ...]):
    for attr in attrs:
        container = getattr(module, attr, None)
        if isinstance(container, (nn.ModuleDict, nn.ParameterDict)) or hasattr(container, "items"):
            for key, entry in container.items():
                if isinstance(entry, nn.Module):
                    yield key, list(entry.parameters())
                elif torch.is_tensor(entry):
                    yield key, [entry]


def _tuner_of(model: nn.Module) -> nn.Module:
    from .peft_model import PeftModel

    if isinstance(model, PeftModel):
        if not isinstance(model.base_model, BaseTuner):
            raise TypeError(
                f"{type(model.base_model).__name__} adds no adapter layers (prompt learning keeps virtual tokens "
                f"instead), so there is no layer status to report."
            )
        return model.base_model
    return model


def get_layer_status(model: nn.Module) -> list[TunerLayerStatus]:
    """One `TunerLayerStatus` per adapter layer (and `modules_to_save` wrapper) of `model`: a `PeftModel`,
    or a model with adapters injected in place (transformers' `add_adapter`, `inject_adapter_in_model`)."""
    statuses: list[TunerLayerStatus] = []
    for name, module in _tuner_of(model).named_modules():
        if not isinstance(module, (BaseTunerLayer, ModulesToSaveWrapper)):
            continue
        grads: dict[str, list[bool]] = collections.defaultdict(list)
        for key, params in _entries(module, module.adapter_layer_names):
            grads[key].extend(p.requires_grad for p in params)
        devices: dict[str, set[str]] = collections.defaultdict(set)
        for key, params in _entries(module, module.adapter_layer_names + module.other_param_names):
            devices[key].update(p.device.type for p in params)
        backend = getattr(module, "quantization_backend", None)
        statuses.append(
            TunerLayerStatus(
                name=name,
                module_type=repr(module).partition("(")[0],
                enabled=not module.disable_adapters,
                active_adapters=list(module.active_adapters),
                merged_adapters=list(module.merged_adapters),
                requires_grad={key: _all_or_irregular(values) for key, values in grads.items()},
                available_adapters=sorted({key for key, _ in _entries(module, module.adapter_layer_names)}),
                devices={key: sorted(values) for key, values in devices.items()},
                quantization_backend=getattr(backend, "backend_name", backend) if backend is not None else None,
            )
        )
    if not statuses:
        raise ValueError(
            "No adapter layers found in the model: pass a PeftModel, or a model with adapters injected "
            "(get_peft_model, inject_adapter_in_model, transformers' add_adapter / load_adapter)."
        )
    return statuses


def _count_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = total = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total


def get_model_status(model: nn.Module) -> TunerModelStatus:
    """The whole model's adapter state, summarising `get_layer_status` ("irregular" where layers disagree)."""
    from .peft_model import PeftModel, is_transformers_model

    if isinstance(model, PeftModel):
        tuner = _tuner_of(model)
        base_model_type = type(model.get_base_model()).__name__
        trainable, total = model.get_nb_trainable_parameters()
        peft_types = {key: str(config.peft_type) for key, config in tuner.peft_config.items()}
        adapter_model_type = type(tuner).__name__
    else:
        base_model_type = type(model).__name__ if is_transformers_model(model) else "other"
        trainable, total = _count_parameters(model)
        peft_types = {}
        adapter_model_type = "None"
    layers = get_layer_status(model)

    enabled_values = {s.enabled for s in layers}
    enabled: bool | Irregular = enabled_values.pop() if len(enabled_values) == 1 else "irregular"
    available = sorted(set().union(*(s.available_adapters for s in layers)))
    active_sets = {tuple(s.active_adapters) for s in layers}
    active: list[str] | Irregular = list(active_sets.pop()) if len(active_sets) == 1 else "irregular"
    merged_all = set().union(*(s.merged_adapters for s in layers))
    merged: list[str] | Irregular = sorted(merged_all)
    if any((set(s.available_adapters) - set(s.merged_adapters)) & merged_all for s in layers):
        merged = "irregular"  # merged in some layers, not in others
    grads: dict[str, list] = collections.defaultdict(list)
    devices: dict[str, set[str]] = collections.defaultdict(set)
    for s in layers:
        for key, value in s.requires_grad.items():
            grads[key].append(value)
        for key, value in s.devices.items():
            devices[key].update(value)
    backends = {s.quantization_backend for s in layers}
    return TunerModelStatus(
        base_model_type=base_model_type,
        adapter_model_type=adapter_model_type,
        peft_types=peft_types,
        trainable_params=trainable,
        total_params=total,
        num_adapter_layers=len(layers),
        enabled=enabled,
        active_adapters=active,
        merged_adapters=merged,
        requires_grad={key: _all_or_irregular(values) for key, values in grads.items()},
        available_adapters=available,
        devices={key: sorted(values) for key, values in devices.items()},
        quantization_backend=backends.pop() if len(backends) == 1 else "irregular",
    )
