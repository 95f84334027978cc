"""Which layers share the input embedding's weight (an LM head tied to it), and putting token layers in.

Used by the standalone method and by other methods' options (LoRA's `trainable_token_indices`), so
that the rows trained on the input embedding are the rows the tied output layer computes with.
"""

from __future__ import annotations

from typing import Any

from peft_core.errors import ConfigError
from peft_core.tuners.construction import place_module
from torch import nn

from .layer import TrainableTokensLayer


def input_embedding_name(model: nn.Module, default: str | None = "embed_tokens") -> str | None:
    """The path of `model.get_input_embeddings()` (through a token layer already wrapping it), else `default`."""
    getter = getattr(model, "get_input_embeddings", None)
    if not callable(getter):
        return default
    try:
        embedding = getter()
    except (NotImplementedError, AttributeError):
        return default
    for name, module in model.named_modules():
        if module is embedding:
            return name
    return default


def config_ties_embeddings(model: nn.Module) -> bool:
    """The model's config says input and output embeddings are tied (`tie_word_embeddings`)."""
    config = getattr(model, "config", None)
    value = config.get("tie_word_embeddings") if isinstance(config, dict) else getattr(config, "tie_word_embeddings", None)
    return bool(value)


def tied_module_names(model: nn.Module) -> list[str]:
    """Modules (other than the input embedding) whose weight is the input embedding's weight.

    Nothing when the config unties them (`tie_word_embeddings=False`) or the model has no input
    embedding. Found structurally (the same `nn.Parameter`), through token layers already in place."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "tie_word_embeddings", None) is False:
        return []
    name = input_embedding_name(model, default=None)
    if name is None:
        return []
    embedding = _unwrapped(model.get_submodule(name))
    weight = getattr(embedding, "weight", None)
    if weight is None:
        return []
    out = []
    for key, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, TrainableTokensLayer) or key == name or key.startswith(name + "."):
            continue
        if module is not embedding and module._parameters.get("weight") is weight:
            out.append(_outer_name(key))
    return sorted(set(out))


def _unwrapped(module: nn.Module) -> nn.Module:
    return module.get_base_layer() if isinstance(module, TrainableTokensLayer) else module


def _outer_name(key: str) -> str:
    """`lm_head.base_layer` -> `lm_head` (the path of the token layer wrapping it, or of the module)."""
    parts = key.split(".")
    while parts and parts[-1] == "base_layer":
        parts.pop()
    return ".".join(parts)


def put_token_layer(
    model: nn.Module,
    key: str,
    adapter_name: str,
    token_indices: list[int],
    init_weights: bool = True,
    tied_to: TrainableTokensLayer | None = None,
    saved_prefix: str = "",
    save_tied: bool = True,
) -> TrainableTokensLayer:
    """Train rows `token_indices` of the module at `key` for `adapter_name` (or, with `tied_to`, make it
    follow that layer's rows); reuses a token layer already there."""
    module = model.get_submodule(key)
    if isinstance(module, TrainableTokensLayer):
        if tied_to is not None and module.tied_to is not tied_to:
            others = [n for n in module.trainable_tokens_delta if n != adapter_name]
            if module.tied_to is None and others:
                raise ConfigError(
                    f"{key!r} shares the input embedding's weight but already trains its own token rows for adapters "
                    f"{others}; train the rows on the input embedding only (the tied layer follows it)."
                )
            module = module.get_base_layer()  # targeted explicitly too: becomes a layer tied to the source
        else:
            module.update_layer(adapter_name, token_indices, init_weights)
            return module
    elif _is_other_adapter_layer(module):
        raise ConfigError(
            f"{key!r} is already adapted by {type(module).__name__}; trainable tokens can't wrap another adapter "
            f"layer. Don't target the embedding with target_modules when training its rows."
        )
    layer = TrainableTokensLayer(module, tied_to=tied_to, saved_prefix=saved_prefix, save_tied=save_tied)
    layer.update_layer(adapter_name, token_indices, init_weights)
    place_module(model, key, layer)
    return layer


def _is_other_adapter_layer(module: Any) -> bool:
    from peft_core import BaseTunerLayer, ModulesToSaveWrapper

    return isinstance(module, (BaseTunerLayer, ModulesToSaveWrapper))
