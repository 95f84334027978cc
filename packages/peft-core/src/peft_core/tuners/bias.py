"""The `bias` config modes shared by many methods (Hugging Face PEFT's generic rule).

- "none": no base-model bias is trained or saved;
- "all": every bias of the base model (every parameter named `bias` outside the adapter layers' own
  containers), including those inside `modules_to_save` wrappers: the original's as
  `<module>.original_module.bias` and the adapter's copy as `<module>.modules_to_save.bias`
  (HF's key once it strips the adapter name);
- "<method>_only" (e.g. "lora_only"): the biases of the adapter layers holding this adapter, saved
  as `<target>.base_layer.bias`.

Only one adapter per model may use a bias mode, as in Hugging Face PEFT. `BaseTuner` applies these
rules to any config with a `bias` field; a method changes nothing to get them.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..errors import ConfigError
from .layer import AdapterTensor, BaseTunerLayer
from .modules_to_save import ModulesToSaveWrapper


def check_bias_mode(config: object, only: str) -> None:
    """A config's `bias` as Hugging Face PEFT accepts it: 'none', 'all' or any '<something>_only' (it tests
    only the suffix); `only` is the method's own name for the last one (e.g. "lora_only")."""
    bias = getattr(config, "bias", "none")
    if not isinstance(bias, str) or not (bias in ("none", "all") or bias.endswith("_only")):
        raise ConfigError(f"{type(config).__name__}.bias must be 'none', 'all' or {only!r}, got {bias!r}.")


def bias_mode(config: object) -> str:
    mode = getattr(config, "bias", "none")
    return mode if isinstance(mode, str) else "none"


def bias_entries(model: nn.Module, mode: str, adapter_name: str) -> dict[str, str]:
    """saved name -> parameter name (both relative to `model`) of the biases `mode` covers."""
    if mode == "none":
        return {}
    if mode.endswith("_only"):
        names = [
            f"{key}.base_layer.bias" if key else "base_layer.bias"
            for key, module in model.named_modules()
            if isinstance(module, BaseTunerLayer)
            and module.has_adapter(adapter_name)
            and getattr(module.get_base_layer(), "bias", None) is not None
        ]
        return {name: name for name in names}
    skip: list[str] = []
    copies: list[str] = []
    for key, module in model.named_modules():
        dot = f"{key}." if key else ""
        if isinstance(module, BaseTunerLayer):
            skip += [f"{dot}{attr}." for attr in (*module.adapter_layer_names, *module.other_param_names)]
        elif isinstance(module, ModulesToSaveWrapper):
            copies.append(f"{dot}modules_to_save.")
    out: dict[str, str] = {}
    for name, _ in model.named_parameters():
        if not (name == "bias" or name.endswith(".bias")) or name.startswith(tuple(skip)):
            continue
        copy_prefix = next((c for c in copies if name.startswith(c)), None)
        if copy_prefix is None:
            out[name] = name
            continue
        owner, _, rest = name[len(copy_prefix) :].partition(".")
        if owner == adapter_name:
            out[copy_prefix + rest] = name
    return out


def check_single_bias_adapter(configs: Mapping[str, object], owner: str) -> None:
    with_bias = [name for name, c in configs.items() if bias_mode(c) != "none"]
    if len(with_bias) > 1:
        raise ValueError(
            f"{owner} supports only 1 adapter with bias (adapters {with_bias} set it). When using multiple "
            f"adapters, set bias to 'none' for all adapters but one."
        )


def mark_biases_trainable(model: nn.Module, entries: Mapping[str, str]) -> None:
    wanted = set(entries.values())
    if not wanted:
        return
    for key, param in model.named_parameters():
        if key in wanted:
            param.requires_grad_(True)


def base_bias_tensors(model: nn.Module, entries: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Biases saved under their own name (loaded straight into the base model)."""
    params = dict(model.named_parameters())
    return {saved: params[name] for saved, name in entries.items() if saved == name}


def renamed_bias_tensors(model: nn.Module, entries: Mapping[str, str], model_attr: str = "model") -> list[AdapterTensor]:
    """Biases saved under another name (modules_to_save copies), declared as tuner tensors so that
    loading maps the saved name back to the copy."""
    params = dict(model.named_parameters())
    return [
        AdapterTensor(f"{model_attr}.{saved}", f"{model_attr}.{name}", params[name])
        for saved, name in entries.items()
        if saved != name
    ]
