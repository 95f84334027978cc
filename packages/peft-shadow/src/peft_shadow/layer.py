"""`ShadowLayer`: wraps one decoder block; injects the shadow state into its input and advances it.

The pair (base hidden states, shadow state) travels through the decoder loop as a `ShadowCarrier`
(the model's boundary hooks create it before the first wrapped block and unwrap it after the last).
A block that receives a plain tensor (adapters disabled, or the active adapter does not cover it)
runs exactly as the frozen block.

Per adapter, with `h` the incoming hidden states and `s` the shadow state:
    h' = h + alpha · up(dropout(down(h − s)))          (injection, before the block)
    o  = block(h')
    s' = (1 − σ(G(o))) · s + σ(G(o)) · T(o)            (gated update, after the block)
where `T` and `G` are two-layer GELU MLPs. Hugging Face PEFT saves these tensors with the literal
component `default` in place of the adapter name (`shadow_down.default.weight`), so we do too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTunerLayer, ConfigError, UnsupportedOperationError

from .config import ShadowConfig

# The adapter-name component Hugging Face PEFT writes into every Shadow key, whatever the adapter's name.
SAVED_ADAPTER_NAME = "default"


class ShadowCarrier:
    """Base hidden states and the shadow state, passed together from block to block."""

    __slots__ = ("hidden", "shadow")

    def __init__(self, hidden: torch.Tensor, shadow: torch.Tensor) -> None:
        self.hidden = hidden
        self.shadow = shadow


def _update_mlp(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class ShadowLayer(BaseTunerLayer):
    adapter_layer_names = ("shadow_down", "shadow_up", "shadow_update_transform", "shadow_update_gate", "shadow_dropout")
    other_param_names = ("shadow_r", "shadow_alpha")
    container_types = {
        "shadow_down": nn.ModuleDict,
        "shadow_up": nn.ModuleDict,
        "shadow_dropout": nn.ModuleDict,
        "shadow_update_transform": nn.ModuleDict,
        "shadow_update_gate": nn.ModuleDict,
    }

    def __init__(self, base_layer: nn.Module, hidden_size: int) -> None:
        super().__init__(base_layer)
        # the width of the base hidden states; the shadow state always has it (the backbone projects to it)
        self.hidden_size = int(hidden_size)

    def update_layer(self, adapter_name: str, config: ShadowConfig) -> None:
        r = config.r
        if r <= 0:
            raise ConfigError(f"ShadowConfig.r must be a positive integer, got {r!r}.")
        width = self.hidden_size
        self.shadow_r[adapter_name] = r
        self.shadow_alpha[adapter_name] = config.shadow_alpha
        # creation order = Hugging Face PEFT's, so a seeded start draws the same numbers
        self.shadow_down[adapter_name] = nn.Linear(width, r, bias=False)
        self.shadow_up[adapter_name] = nn.Linear(r, width, bias=False)
        self.shadow_dropout[adapter_name] = nn.Dropout(config.shadow_dropout) if config.shadow_dropout else nn.Identity()
        if config.init_weights:
            nn.init.zeros_(self.shadow_up[adapter_name].weight)
        hidden = config.update_hidden_size or r
        self.shadow_update_transform[adapter_name] = _update_mlp(width, hidden)
        self.shadow_update_gate[adapter_name] = _update_mlp(width, hidden)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters or [adapter_name])

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """Hugging Face's keys: the adapter name replaced by `default` (not dropped)."""
        out = []
        for t in super().adapter_tensors(adapter_name):
            attr, _, rest = t.saved_key.partition(".")
            out.append(AdapterTensor(f"{attr}.{SAVED_ADAPTER_NAME}.{rest}", t.model_key, t.tensor))
        return out

    # -- forward ----------------------------------------------------------------------------
    def forward(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(hidden_states, ShadowCarrier):
            return self.base_layer(hidden_states, *args, **kwargs)
        adapter_name = self.active_adapters[0]  # the model allows exactly one active adapter
        if adapter_name not in self.shadow_down:  # a gap in the adapter's blocks: the state passes unchanged
            out = self.base_layer(hidden_states.hidden, *args, **kwargs)
            carrier = ShadowCarrier(_hidden_of(out), hidden_states.shadow)
            return (carrier, *out[1:]) if isinstance(out, tuple) else carrier
        injected = self.inject(hidden_states.hidden, hidden_states.shadow, adapter_name)
        out = self.base_layer(injected, *args, **kwargs)
        new_hidden = _hidden_of(out)
        carrier = ShadowCarrier(new_hidden, self.advance(new_hidden, hidden_states.shadow, adapter_name))
        # tuple-returning blocks (GPT-2, GPT-J) keep their other outputs; the loop reads element 0
        return (carrier, *out[1:]) if isinstance(out, tuple) else carrier

    def inject(self, hidden: torch.Tensor, shadow: torch.Tensor, adapter_name: str) -> torch.Tensor:
        """h + alpha · up(dropout(down(h − s))), computed in the adapter's dtype, added in the base's."""
        down = self.shadow_down[adapter_name]
        delta = (hidden - shadow).to(down.weight.dtype)
        delta = self.shadow_up[adapter_name](down(self.shadow_dropout[adapter_name](delta)))
        return hidden + (self.shadow_alpha[adapter_name] * delta).to(hidden.dtype)

    def advance(self, hidden: torch.Tensor, shadow: torch.Tensor, adapter_name: str) -> torch.Tensor:
        """(1 − g) · s + g · T(o), with g = σ(G(o)); the result keeps the shadow state's dtype."""
        transform = self.shadow_update_transform[adapter_name]
        out = hidden.to(transform[0].weight.dtype)
        gate = torch.sigmoid(self.shadow_update_gate[adapter_name](out))
        new_shadow = (1.0 - gate) * shadow.to(out.dtype) + gate * transform(out)
        return new_shadow.to(shadow.dtype)

    # -- no weight delta --------------------------------------------------------------------
    def merge(self, safe_merge: bool = False, adapter_names: Any = None) -> None:
        raise UnsupportedOperationError(
            "ShadowPEFT can't be merged into the base weights: its effect depends on the input (a shadow state "
            "that follows the decoder), not on a weight change. Use unload() for the base model, or "
            "unload_shadow() for the standalone shadow network."
        )

    def unmerge(self) -> None:
        return None  # nothing is ever merged

    def __getattr__(self, name: str) -> Any:
        # decoder loops read attributes of the block they call (e.g. Qwen3's `attention_type`)
        try:
            return super().__getattr__(name)
        except AttributeError:
            base = self.__dict__.get("_modules", {}).get("base_layer")
            if base is None or name == "base_layer":
                raise
            return getattr(base, name)


def _hidden_of(out: Any) -> torch.Tensor:
    """The hidden states in a block's output (a tensor, a tuple, or a structured output)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple):
        return out[0]
    for attr in ("hidden_states", "last_hidden_state"):
        value = getattr(out, attr, None)
        if value is not None:
            return value
    raise TypeError(f"ShadowPEFT can't find the hidden states in a decoder block's output of type {type(out).__name__}.")
