"""Finding and reading an adapter's weight file (local folder or the Hub), and checking that it belongs to the
config read next to it."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import torch

from .config import PeftConfig, loaded_config_source
from .config_binding import check_weights_match_config
from .errors import AdapterNotFoundError
from .serialization import (
    SAFETENSORS_WEIGHTS_NAME,
    WEIGHTS_NAME,
    open_weights_file,
    read_weights_file,
)


def load_peft_weights(
    model_id: str | os.PathLike,
    subfolder: str | None = None,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    **hub_kwargs: Any,
) -> dict[str, torch.Tensor]:
    """Read the adapter weights: a local safetensors file wins, then a local .bin, then the Hub."""
    return read_weights_file(_weights_path(model_id, subfolder, revision, **hub_kwargs), device=device)


def _open_peft_weights(
    model_id: str | os.PathLike, subfolder: str | None, revision: str | None, **hub_kwargs: Any
) -> Mapping[str, torch.Tensor]:
    """`load_peft_weights` for loading into a model: a safetensors file is read lazily, tensor by tensor
    into the adapter's parameters, so loading never holds a second copy of the adapter."""
    return open_weights_file(_weights_path(model_id, subfolder, revision, **hub_kwargs))


def _check_same_save(weights: Mapping[str, torch.Tensor], config: PeftConfig, loaded: bool) -> None:
    """Refuse weights saved with another config than the one just read (a half-finished save)."""
    source = loaded_config_source(config) if loaded else None
    if source is not None:
        path = getattr(weights, "path", "adapter weights")
        fields = [f.name for f in dataclasses.fields(config)]
        check_weights_match_config(getattr(weights, "metadata", None), source[1], path, source[0], fields)


def _open_adapter(
    model_id: str | os.PathLike, config: PeftConfig | None, subfolder: str | None, revision: str | None, **hub_kwargs: Any
) -> tuple[PeftConfig, Mapping[str, torch.Tensor]]:
    """The config (read from `model_id` unless given) and the lazily opened weights of an adapter to load,
    refusing weights saved with another config than the one read."""
    loaded = config is None
    if config is None:
        config = PeftConfig.from_pretrained(model_id, subfolder=subfolder, revision=revision, **hub_kwargs)
    weights = _open_peft_weights(model_id, subfolder=subfolder, revision=revision, **hub_kwargs)
    _check_same_save(weights, config, loaded)
    return config, weights


def _weights_path(model_id: str | os.PathLike, subfolder: str | None, revision: str | None, **hub_kwargs: Any) -> str:
    from .hub import resolve_adapter_file

    for filename in (SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME):
        path = resolve_adapter_file(model_id, filename, subfolder=subfolder, revision=revision, **hub_kwargs)
        if path is not None:
            return path
    where = os.path.join(os.fspath(model_id), subfolder or "")
    raise AdapterNotFoundError(
        f"No {SAFETENSORS_WEIGHTS_NAME} or {WEIGHTS_NAME} in {where!r}. The adapter was not saved completely; "
        f"save it again with save_pretrained."
    )
