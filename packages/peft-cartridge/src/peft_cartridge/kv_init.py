"""Starting a cache-prefix adapter from the base model's own cache (the paper's third initialisation).

Run the frozen base model over a text (or bring a cache you computed) and copy its first
`num_virtual_tokens` cached keys and values into the adapter. Works for CARTRIDGE and for any other
cache-prefix adapter that holds its final matrix directly (prefix tuning without a projection).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from peft_core import ConfigError, UnsupportedOperationError
from peft_core.tuners.prompt_learning import PromptLearningTuner


def _key_value_pairs(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer `(key, value)`, each `[batch, heads, tokens, head_dim]`, from a legacy tuple or a
    transformers cache object."""
    if isinstance(cache, (tuple, list)):
        return [(layer[0], layer[1]) for layer in cache]
    layers = getattr(cache, "layers", None)
    if layers is not None and all(hasattr(layer, "keys") and hasattr(layer, "values") for layer in layers):
        if any(torch.is_tensor(layer.keys) for layer in layers):
            return [(layer.keys, layer.values) for layer in layers]
    to_legacy = getattr(cache, "to_legacy_cache", None)
    if callable(to_legacy):
        return [(layer[0], layer[1]) for layer in to_legacy()]
    try:
        entries = list(cache)
    except TypeError:
        entries = []
    if entries and all(isinstance(e, (tuple, list)) and len(e) >= 2 for e in entries):
        return [(e[0], e[1]) for e in entries]
    raise ConfigError(
        f"Can't read keys and values from a {type(cache).__name__}: pass a tuple of (key, value) per layer or a "
        f"transformers cache (DynamicCache)."
    )


def prompt_embeddings_from_past_key_values(past_key_values: Any, *, num_virtual_tokens: int) -> torch.Tensor:
    """The first `num_virtual_tokens` cached tokens as a prefix matrix `[num_virtual_tokens,
    num_layers · 2 · heads · head_dim]` (the saved `prompt_embeddings` layout), from a one-sequence cache."""
    pairs = _key_value_pairs(past_key_values)
    if not pairs:
        raise ConfigError("The cache is empty: run the model with use_cache=True first.")
    if pairs[0][0].ndim != 4:
        raise ConfigError(f"Cached keys must be [batch, heads, tokens, head_dim], got shape {tuple(pairs[0][0].shape)}.")
    batch, heads, _, head_dim = pairs[0][0].shape
    if batch != 1:
        raise ConfigError(f"The cache must come from a single sequence (batch 1), got batch {batch}.")
    rows = []
    for layer, (key, value) in enumerate(pairs):
        for tensor in (key, value):
            if tensor.ndim != 4 or tuple(tensor.shape[:2]) != (1, heads) or tensor.shape[3] != head_dim:
                raise ConfigError(
                    f"Layer {layer}'s cached tensor has shape {tuple(tensor.shape)}; every layer must have "
                    f"[1, {heads}, tokens, {head_dim}]."
                )
            if tensor.shape[2] < num_virtual_tokens:
                raise ConfigError(f"Need at least {num_virtual_tokens} cached tokens, layer {layer} has {tensor.shape[2]}.")
            rows.append(tensor[0, :, :num_virtual_tokens, :].transpose(0, 1))  # [tokens, heads, head_dim]
    return torch.stack(rows, dim=1).reshape(num_virtual_tokens, -1)


def _cache_prefix_tuner(model: Any, adapter_name: str | None) -> tuple[PromptLearningTuner, str]:
    tuner = getattr(model, "base_model", model)
    if not isinstance(tuner, PromptLearningTuner) or not tuner.injects_cache:
        raise UnsupportedOperationError(
            f"{type(model).__name__} holds no cache-prefix adapter (CARTRIDGE or prefix tuning); nothing to initialise."
        )
    name = adapter_name if adapter_name is not None else tuner.active_adapters[0]
    if name not in tuner.prompt_encoder:
        raise ConfigError(f"No adapter named {name!r}; adapters: {list(tuner.prompt_encoder)}.")
    if tuner.prompt_encoder[name].reparameterized:
        raise UnsupportedOperationError(
            f"Adapter {name!r} produces its prefix with a projection network (prefix_projection=True); a cache can "
            f"only initialise an adapter that holds the prefix itself."
        )
    return tuner, name


@torch.no_grad()
def initialize_kv_prefix_from_past_key_values(
    model: Any, *, adapter_name: str | None = None, past_key_values: Any, num_virtual_tokens: int | None = None
) -> torch.Tensor:
    """Load the first cached tokens of `past_key_values` into the adapter; returns the loaded matrix."""
    tuner, name = _cache_prefix_tuner(model, adapter_name)
    count = tuner.peft_config[name].num_virtual_tokens if num_virtual_tokens is None else num_virtual_tokens
    matrix = prompt_embeddings_from_past_key_values(past_key_values, num_virtual_tokens=count)
    tuner.prompt_encoder[name].load_prompt_matrix(matrix)
    return matrix


def _token_ids(tokenizer: Any, text: str, use_chat_template: bool, max_length: int | None) -> torch.Tensor:
    if use_chat_template and hasattr(tokenizer, "apply_chat_template"):
        try:
            ids = tokenizer.apply_chat_template(
                [{"role": "system", "content": text}], tokenize=True, add_generation_prompt=False, return_dict=False,
                return_tensors="pt",
            )
        except (TypeError, ValueError):  # no chat template, or an older signature
            ids = None
        if ids is not None:
            ids = ids if torch.is_tensor(ids) else torch.as_tensor(ids)
            ids = ids.reshape(1, -1)
            return ids[:, :max_length] if max_length is not None else ids
    encoded = tokenizer(text, return_tensors="pt", truncation=max_length is not None, max_length=max_length)
    return encoded["input_ids"]


@torch.no_grad()
def initialize_kv_prefix_from_text(
    model: Any,
    tokenizer: Any,
    *,
    text: str,
    adapter_name: str | None = None,
    num_virtual_tokens: int | None = None,
    use_chat_template: bool = True,
    max_length: int | None = None,
) -> torch.Tensor:
    """Prefill the base model (adapters off) on `text` and load its first cached tokens into the adapter."""
    _cache_prefix_tuner(model, adapter_name)  # refuse early, before running the model
    input_ids = _token_ids(tokenizer, text, use_chat_template, max_length)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    input_ids = input_ids.to(device)
    with model.disable_adapter():
        outputs = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=True)
    cache = getattr(outputs, "past_key_values", None)
    if cache is None:
        cache = getattr(outputs, "cache", None)
    return initialize_kv_prefix_from_past_key_values(
        model, adapter_name=adapter_name, past_key_values=cache, num_virtual_tokens=num_virtual_tokens
    )


__all__: Sequence[str] = (
    "initialize_kv_prefix_from_past_key_values",
    "initialize_kv_prefix_from_text",
    "prompt_embeddings_from_past_key_values",
)
