"""`layer_replication`: a deeper model made of repeated decoder layers that share their base weights.

`[[0, 4], [2, 5]]` turns layers `0..4` into `0, 1, 2, 3, 2, 3, 4` (ranges are end-exclusive): each copy
is a new module whose parameters *are* the original layer's (no extra memory), so LoRA adapts every
copy separately and the adapter file has keys for the new, larger layer count. Hugging Face PEFT
0.21.2's rules: the layer list is found at `model(.model)*.layers`, `(.bert).encoder.layer` or `.h`;
attention `layer_idx` attributes are renumbered and `config.num_hidden_layers` updated.

Replication happens once per model (the first adapter asking for it); later adapters must ask for the
same map or none. Merging is refused: the copies share one base weight, so their different adapters
can't all be folded into it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

from peft_core.errors import ConfigError
from torch import nn

MERGE_REFUSAL = (
    "the adapter uses layer_replication: the repeated layers share their base weights, so their separate "
    "adapters can't be merged into them (use the unmerged model, or unload() without merging)"
)


def replicate_layers(model: nn.Module, layer_map: Sequence[Sequence[int]]) -> Callable[[], None]:
    """Replace the model's decoder layers per `layer_map`; returns a function that undoes it."""
    holder, attribute, layers = _find_layers(model)
    new_layers = []
    for pair in layer_map:
        if len(pair) != 2:
            raise ConfigError(f"layer_replication entries are [start, end) pairs, got {list(pair)!r}.")
        start, end = int(pair[0]), int(pair[1])
        if not 0 <= start < end <= len(layers):
            raise ConfigError(
                f"layer_replication range [{start}, {end}) does not fit the model's {len(layers)} layers; use "
                f"0 <= start < end <= {len(layers)}."
            )
        for i in range(start, end):
            clone = _clone_sharing_weights(layers[i])
            for sub in clone.modules():
                if hasattr(sub, "layer_idx"):
                    sub.layer_idx = len(new_layers)
            new_layers.append(clone)
    config = getattr(model, "config", None)
    old_count = getattr(config, "num_hidden_layers", None)
    setattr(holder, attribute, nn.ModuleList(new_layers))
    if old_count is not None:
        config.num_hidden_layers = len(new_layers)

    def undo() -> None:
        setattr(holder, attribute, layers)
        if old_count is not None:
            config.num_hidden_layers = old_count

    return undo


def _find_layers(model: nn.Module) -> tuple[nn.Module, str, nn.ModuleList]:
    inner = model
    while hasattr(inner, "model"):
        inner = inner.model
    if hasattr(inner, "bert"):
        inner = inner.bert
    if isinstance(getattr(inner, "layers", None), nn.ModuleList):
        return inner, "layers", inner.layers
    encoder = getattr(inner, "encoder", None)
    if encoder is not None and isinstance(getattr(encoder, "layer", None), nn.ModuleList):
        return encoder, "layer", encoder.layer
    if isinstance(getattr(inner, "h", None), nn.ModuleList):
        return inner, "h", inner.h
    raise ConfigError(
        f"layer_replication: could not find the layer list of {type(model).__name__} (looked for "
        f"model(.model)*.layers, .encoder.layer and .h as in Llama-, BERT- and Falcon-style models)."
    )


def _clone_sharing_weights(module: nn.Module) -> nn.Module:
    """A deep copy of `module` whose parameters are the original's (buffers are copied)."""
    clone = copy.deepcopy(module)
    for name, sub in module.named_modules():
        target = clone.get_submodule(name)
        for pname, param in sub.named_parameters(recurse=False):
            target.register_parameter(pname, param)
    return clone


def check_replication(current: Any, config: Any) -> bool:
    """Whether this adapter must replicate the layers now (False: already done, or not asked for)."""
    wanted = config.layer_replication
    if wanted is None:
        return False
    normalised = [list(map(int, pair)) for pair in wanted]
    if current is None:
        return True
    if normalised != current:
        raise ConfigError(
            f"The model's layers were already replicated with layer_replication={current}; an adapter asking for "
            f"{normalised} can't be added (one replication per model). Use the same map or none."
        )
    return False
