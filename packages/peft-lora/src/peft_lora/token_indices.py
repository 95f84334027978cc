"""LoRA's `trainable_token_indices` and `ensure_weight_tying`: train selected embedding rows next to LoRA.

The rows are held by peft-trainable-tokens' `TrainableTokensLayer`, saved under
`<embedding>.token_adapter.trainable_tokens_delta` (Hugging Face PEFT's wrapper layout). Which layers
get rows follows Hugging Face PEFT 0.21.2:

- a list of ids trains those rows of the input embedding; a dict `{layer name (suffix): ids}` names the
  layers (e.g. an encoder and a decoder embedding);
- on a model with tied input/output embeddings (`tie_word_embeddings`), the layers sharing the input
  embedding's weight follow its rows (and save nothing), unless a dict gives them different ids
  (then each trains its own rows; `ensure_weight_tying=True` refuses that instead);
- `ensure_weight_tying=True` on a model without tied weights only warns.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Mapping

from peft_core.errors import ConfigError
from torch import nn

TOKEN_PREFIX = "token_adapter."


def token_targets(model: nn.Module, config: Any) -> dict[str, list[int]]:
    """`{layer name or suffix: token ids}` of `config.trainable_token_indices`."""
    from peft_trainable_tokens import input_embedding_name

    indices = config.trainable_token_indices
    if isinstance(indices, Mapping):
        return {str(k): list(v) for k, v in indices.items()}
    return {input_embedding_name(model, "embed_tokens"): list(indices)}


def check_token_config(model: nn.Module, config: Any) -> None:
    """Refuse what can't work before anything is created: rows of a layer trained in full
    (`modules_to_save`), and `ensure_weight_tying` for tied embeddings adapted through
    `target_modules` / `modules_to_save` (tying those adapters is not implemented here)."""
    from peft_trainable_tokens import check_token_ids, config_ties_embeddings, tied_module_names

    if config.trainable_token_indices is not None:
        for name, indices in token_targets(model, config).items():
            check_token_ids(indices, f"trainable_token_indices[{name!r}]")
            if config.modules_to_save and name in config.modules_to_save:
                raise ConfigError(
                    f"The embedding {name!r} is both in modules_to_save (trained in full) and in "
                    f"trainable_token_indices (some rows trained); choose one of the two."
                )
    if not config.ensure_weight_tying or not config_ties_embeddings(model) or not tied_module_names(model):
        return
    embedding_layers = ("embed_tokens", "lm_head")
    in_save = any(m.split(".")[-1] in embedding_layers for m in config.modules_to_save or [])
    targets = config.target_modules
    if isinstance(targets, str):
        in_targets = any(re.fullmatch(targets, m) for m in embedding_layers)
    else:
        in_targets = any(m.split(".")[-1] in embedding_layers for m in targets or [])
    if in_save or in_targets:
        where = "modules_to_save" if in_save else "target_modules"
        raise ConfigError(
            f"ensure_weight_tying=True with a tied embedding in {where} is not supported by peft-lora (it ties the "
            f"rows of trainable_token_indices only). Train new tokens with trainable_token_indices, or set "
            f"ensure_weight_tying=False (the tied layers then get separate adapters, as Hugging Face PEFT does "
            f"without the flag)."
        )


def add_token_layers(model: nn.Module, config: Any, adapter_name: str) -> None:
    """Put the token layers of adapter `adapter_name` into `model` (Hugging Face PEFT's rules above)."""
    from peft_trainable_tokens import (
        TrainableTokensLayer,
        config_ties_embeddings,
        input_embedding_name,
        put_token_layer,
        tied_module_names,
    )

    if config.trainable_token_indices is None:
        return
    targets = token_targets(model, config)
    tied_config = config_ties_embeddings(model)
    ensure = bool(config.ensure_weight_tying)
    tied_names = set(tied_module_names(model)) if tied_config else set()
    embedding_name = input_embedding_name(model, default=None)

    mismatch = False
    skip: set[str] = set()
    if len(targets) > 1 and tied_names and embedding_name is not None:
        tied_keys = [
            key
            for key in targets
            if embedding_name.endswith(key) or any(t.endswith(key) or key in t.split(".") for t in tied_names)
        ]
        if len(tied_keys) >= 2:
            first = targets[tied_keys[0]]
            mismatch = any(targets[k] != first for k in tied_keys[1:])
            if mismatch and ensure:
                listing = ", ".join(f"{k}: {targets[k]}" for k in tied_keys)
                raise ConfigError(
                    f"ensure_weight_tying=True, but the tied layers get different token ids ({listing}); give them "
                    f"the same ids or set ensure_weight_tying=False (then each trains its own rows)."
                )
            if not mismatch:
                skip = set(tied_keys) & tied_names

    names = [name for name, _ in model.named_modules(remove_duplicate=False)]
    for target, indices in targets.items():
        if target in skip:
            continue
        keys = _matching(names, target)
        if not keys:
            raise ConfigError(
                f"trainable_token_indices names {target!r}, but no module of the model ends with that name; use the "
                f"embedding's name, e.g. {embedding_name!r}."
            )
        for key in keys:
            put_token_layer(model, key, adapter_name, indices, saved_prefix=TOKEN_PREFIX)

    if ensure and not tied_config:
        warnings.warn(
            "ensure_weight_tying=True but the model does not have tied weights (tie_word_embeddings=False); weight "
            "tying will not be applied for trainable_token_indices.",
            UserWarning,
            stacklevel=4,
        )
    source = model.get_submodule(embedding_name) if embedding_name is not None else None
    if tied_config and isinstance(source, TrainableTokensLayer) and (ensure or not mismatch):
        for key in sorted(tied_names):
            put_token_layer(
                model,
                key,
                adapter_name,
                source.token_indices[adapter_name],
                tied_to=source,
                saved_prefix=TOKEN_PREFIX,
                save_tied=False,
            )


def _matching(names: list[str], target: str) -> list[str]:
    """Outermost modules whose name ends with `target` (Hugging Face PEFT's plain `endswith`)."""
    keys: list[str] = []
    for name in names:
        if name.endswith(target) and not any(name.startswith(k + ".") for k in keys) and name not in keys:
            keys.append(name)
    return [k for k in keys if not re.search(r"\.base_layer(\.|$)", k)]
