"""Loading an X-LoRA adapter's experts: each is a saved LoRA adapter, injected and loaded by peft-lora.

Expert `key` of X-LoRA adapter `a` becomes the LoRA adapter `a__key` in the layers (names must be unique
across X-LoRA adapters). The LoRA layers holding experts are then given X-LoRA's layer classes.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

from peft_core import ConfigError, PeftConfig, set_peft_model_state_dict
from peft_core import load_peft_weights
from peft_lora import LoraConfig, LoraModel
from peft_lora.layers import LoraLayer

from .layer import XLORA_CLASSES

SEPARATOR = "__"
_UNSUPPORTED_EXPERT_OPTIONS = ("use_dora", "modules_to_save", "trainable_token_indices", "layer_replication", "target_parameters")


def expert_name(adapter_name: str, key: str) -> str:
    return f"{adapter_name}{SEPARATOR}{key}"


def read_expert_config(key: str, path: str) -> LoraConfig:
    config = PeftConfig.from_pretrained(path)
    if not isinstance(config, LoraConfig) or config.peft_type != "LORA":
        raise ConfigError(f"X-LoRA expert {key!r} at {path!r} is a {config.peft_type} adapter; experts must be LoRA adapters.")
    for option in _UNSUPPORTED_EXPERT_OPTIONS:
        if getattr(config, option, None):
            raise ConfigError(
                f"X-LoRA expert {key!r} at {path!r} uses {option}={getattr(config, option)!r}, which X-LoRA's mixing does "
                f"not support (as in Hugging Face PEFT); use plain LoRA experts."
            )
    config.inference_mode = False
    return config


class ExpertLoader:
    """Injects experts into `model` through one private `LoraModel` (peft-lora's matching, layer types,
    rank patterns and loading), kept outside the module tree so nothing is registered twice."""

    def __init__(self) -> None:
        self.lora: LoraModel | None = None

    def load(self, model: nn.Module, name: str, config: LoraConfig, path: str, low_cpu_mem_usage: bool) -> None:
        if self.lora is None:
            self.lora = LoraModel(model, {name: config}, name, low_cpu_mem_usage=low_cpu_mem_usage)
        else:
            self.lora.peft_config[name] = config
            self.lora.inject_adapter(model, name, low_cpu_mem_usage=low_cpu_mem_usage)
        weights = load_peft_weights(path)
        # keys relative to the LoRA tuner ("model.<path>..."), as set_peft_model_state_dict expects for it
        relative = {k[len("base_model."):] if k.startswith("base_model.") else k: v for k, v in weights.items()}
        set_peft_model_state_dict(self.lora, relative, adapter_name=name, low_cpu_mem_usage=low_cpu_mem_usage)

    def forget(self, names: Iterable[str]) -> None:
        if self.lora is not None:
            for name in names:
                self.lora.peft_config.pop(name, None)


def adopt_expert_layers(model: nn.Module, experts: Iterable[str]) -> list[LoraLayer]:
    """Give every LoRA layer holding one of `experts` its X-LoRA class; return them in module order."""
    wanted = set(experts)
    layers: list[LoraLayer] = []
    for key, module in model.named_modules():
        if not isinstance(module, LoraLayer) or not wanted & set(module.adapter_names()):
            continue
        if type(module) not in XLORA_CLASSES.values():
            xlora_class = XLORA_CLASSES.get(type(module))
            if xlora_class is None:
                raise ConfigError(
                    f"An X-LoRA expert adapts {key!r}, a {type(module.get_base_layer()).__name__}: X-LoRA mixes experts "
                    f"on linear (and GPT-2 Conv1D) and embedding layers only."
                )
            module.__class__ = xlora_class  # the same LoRA layer, with X-LoRA's forward pass
        layers.append(module)
    return layers
