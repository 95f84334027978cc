"""Composing CARTRIDGE adapters by concatenation (the paper's composition, at the file level)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import torch

from peft_core import ConfigError, PeftConfig, load_peft_weights
from peft_core.serialization import WriteBatch, save_weights

from .config import CartridgeConfig

_MUST_AGREE = ("task_type", "token_dim", "num_layers", "num_attention_heads", "num_transformer_submodules")


def compose_cartridge_adapters(
    adapter_paths: Sequence[str | os.PathLike], *, output_path: str | os.PathLike, safe_serialization: bool = True
) -> None:
    """Write one CARTRIDGE adapter whose prefix is the saved adapters' prefixes one after the other.

    The configs must agree on the base model's shape; the result keeps the first adapter's frozen
    leading tokens (one attention sink). Both files are replaced together or not at all.
    """
    paths = [Path(p) for p in adapter_paths]
    if len(paths) < 2:
        raise ConfigError(f"Composing needs at least 2 adapters, got {len(paths)}.")
    configs = [PeftConfig.from_pretrained(p) for p in paths]
    for path, config in zip(paths, configs):
        if not isinstance(config, CartridgeConfig):
            raise ConfigError(f"The adapter at {str(path)!r} is a {config.peft_type} adapter, not a CARTRIDGE one.")
    first = configs[0]
    for path, config in zip(paths[1:], configs[1:]):
        for attr in _MUST_AGREE:
            if getattr(config, attr) != getattr(first, attr):
                raise ConfigError(
                    f"CARTRIDGE adapters {str(paths[0])!r} and {str(path)!r} differ in {attr} "
                    f"({getattr(first, attr)!r} vs {getattr(config, attr)!r}); they were made for different models."
                )
    prefixes = [load_peft_weights(p)["prompt_embeddings"] for p in paths]
    composed = torch.cat(prefixes, dim=0)
    config = dataclasses.replace(first, num_virtual_tokens=composed.shape[0])
    output = Path(output_path)
    output.mkdir(parents=True, exist_ok=True)
    with WriteBatch() as batch:
        config.save_pretrained(output, write_batch=batch)
        save_weights({"prompt_embeddings": composed}, os.fspath(output), safe_serialization=safe_serialization, batch=batch)
