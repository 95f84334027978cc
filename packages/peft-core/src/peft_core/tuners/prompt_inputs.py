"""Reading a base model and its call arguments for prompt learning: shape fields from the model's config,
argument binding against `forward` / `generate` signatures, cache lengths, and padding of per-token inputs."""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

import torch
from torch import nn


def _config_dict(model_config: Any) -> dict[str, Any]:
    if model_config is None:
        return {}
    if isinstance(model_config, Mapping):
        data = dict(model_config)
    elif hasattr(model_config, "to_dict"):
        data = model_config.to_dict()
    else:
        data = dict(vars(model_config))
    text = data.get("text_config")
    return dict(text) if isinstance(text, Mapping) else data


def _first_value(model_config: Any, data: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        if name in data and data[name] is not None:
            return data[name]
    for name in names:  # attribute aliases (e.g. T5's num_hidden_layers -> num_layers) are not in to_dict()
        value = getattr(model_config, name, None) if not isinstance(model_config, Mapping) else None
        if value is not None:
            return value
    return None


def _model_config(model: nn.Module) -> Any:
    return getattr(model, "config", None)


def _is_encoder_decoder(model: nn.Module) -> bool:
    config = _model_config(model)
    if isinstance(config, Mapping):
        return bool(config.get("is_encoder_decoder", False))
    return bool(getattr(config, "is_encoder_decoder", False))


def _bind_arguments(fn: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Positional arguments of a model call turned into keywords, following `fn`'s signature."""
    if not args:
        return dict(kwargs)
    signature = inspect.signature(fn)
    bound = signature.bind_partial(*args, **kwargs)
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise TypeError(f"Prompt learning can't pass extra positional arguments {value!r}; use keywords.")
        else:
            out[name] = value
    return out


def _parameters(fn: Any) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _cache_argument(fn: Any) -> str | None:
    """The keyword a model's forward takes its key/value cache by (`cache` in transformers >= 5.x)."""
    params = _parameters(fn)
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _cache_length(cache: Any) -> int:
    if cache is None:
        return 0
    length = getattr(cache, "get_seq_length", None)
    if callable(length):
        return int(length())
    return 0


def _batch_size(input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> int:
    if input_ids is not None:
        return input_ids.shape[0]
    if inputs_embeds is not None:
        return inputs_embeds.shape[0]
    raise ValueError("Prompt learning needs input_ids or inputs_embeds to know the batch size.")


def _prepend(tensor: torch.Tensor | None, count: int, value: int | float) -> torch.Tensor | None:
    if tensor is None:
        return None
    pad = torch.full((tensor.shape[0], count), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat((pad, tensor), dim=1)


