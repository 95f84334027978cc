"""The four hooks that carry the shadow state through the base model's decoder loop.

- base model, before forward: reset, split a `ShadowCache` (the base sees only its own cache),
  compute the initial shadow state from the raw inputs (only there is the 2-D attention mask at hand);
- first wrapped block, before forward: pair the hidden states with that state (`ShadowCarrier`);
- last wrapped block, after forward: hand the plain hidden states on to the final norm;
- base model, after forward: put the base's and the shadow backbone's caches together again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from peft_core import ConfigError

from .layer import ShadowCarrier, ShadowLayer

if TYPE_CHECKING:
    from .model import ShadowModel


# transformers >= 5.x names the KV cache `cache` (in and out); earlier versions `past_key_values`
CACHE_NAMES = ("cache", "past_key_values")


def _cache_name_in(kwargs: dict) -> str:
    return next((name for name in CACHE_NAMES if kwargs.get(name) is not None), CACHE_NAMES[-1])


def _cache_of(output: Any) -> tuple[str | None, Any]:
    """(field name, value) of the KV cache in a model output, or (None, None)."""
    keys = output.keys() if hasattr(output, "keys") else ()
    for name in CACHE_NAMES:
        if name in keys:
            return name, output[name]
    for name in CACHE_NAMES:
        if getattr(type(output), "__dataclass_fields__", {}).get(name) is not None:
            return name, getattr(output, name)
    return None, None


def _cache_parameter(backbone: nn.Module) -> str:
    """The name under which `backbone.forward` takes its KV cache."""
    import inspect

    try:
        params = inspect.signature(backbone.forward).parameters
    except (TypeError, ValueError):
        return CACHE_NAMES[-1]
    return next((name for name in CACHE_NAMES if name in params), CACHE_NAMES[-1])


def _is_shadow_cache(past: Any) -> bool:
    if past is None or type(past).__name__ != "ShadowCache":
        return False
    from .cache import ShadowCache  # transformers is loaded: something made a cache

    return isinstance(past, ShadowCache)


class ShadowHooks:
    """Registers the hooks on the tuner's model and holds what one forward passes between them."""

    def __init__(self, tuner: ShadowModel) -> None:
        self.tuner = tuner
        self.handles: list[Any] = []
        self.entry: ShadowLayer | None = None
        self.seed_state: torch.Tensor | None = None
        self._shadow_past: Any = None
        self._pack_cache = False

    def register(self) -> None:
        """(Re)attach the hooks to the current first and last wrapped blocks (never twice)."""
        self.remove()
        model = self.tuner.model
        wrapped = [m for m in model.modules() if isinstance(m, ShadowLayer)]
        if not wrapped:
            return
        self.entry = wrapped[0]
        self.handles = [
            model.register_forward_pre_hook(self._seed, with_kwargs=True),
            model.register_forward_hook(self._pack, with_kwargs=True),
            wrapped[0].register_forward_pre_hook(self._wrap, with_kwargs=True),
            wrapped[-1].register_forward_hook(self._unwrap, with_kwargs=True),
        ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.entry = None

    def path_active(self) -> bool:
        entry = self.entry
        if entry is None or entry.disable_adapters:
            return False
        active = self.tuner.active_adapters
        return bool(active) and active[0] in entry.shadow_down

    # -- the hooks --------------------------------------------------------------------------
    def _seed(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        self.seed_state, self._shadow_past, self._pack_cache = None, None, False
        cache_name = _cache_name_in(kwargs)
        past = kwargs.get(cache_name)
        shadow_past = None
        if _is_shadow_cache(past):
            kwargs = {**kwargs, cache_name: past.base}  # the base model can't read a ShadowCache
            shadow_past = past.shadow
        if not self.path_active():
            return args, kwargs
        use_cache = kwargs.get("use_cache")
        if use_cache is None:
            use_cache = bool(getattr(getattr(module, "config", None), "use_cache", False))
        input_ids = kwargs.get("input_ids")
        if input_ids is None and args:
            input_ids = args[0]
        inputs_embeds = kwargs.get("inputs_embeds")
        if input_ids is None and inputs_embeds is None:
            raise ConfigError(
                "ShadowPEFT computes its shadow state from input_ids or inputs_embeds; the forward got neither."
            )
        self.seed_state, self._shadow_past = self._initial_state(
            input_ids, inputs_embeds, kwargs.get("attention_mask"), kwargs.get("position_ids"), shadow_past, use_cache
        )
        self._pack_cache = bool(use_cache)
        return args, kwargs

    def _initial_state(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        past: Any,
        use_cache: bool,
    ) -> tuple[torch.Tensor, Any]:
        tuner = self.tuner
        adapter_name = tuner.active_adapters[0]
        backbone = tuner.shadow_backbone[adapter_name]
        kwargs: dict[str, Any] = {
            "attention_mask": attention_mask,
            "use_cache": use_cache,
            "return_dict": True,
            _cache_parameter(backbone): past,
        }
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        if tuner._shares_embeddings.get(adapter_name, False) and inputs_embeds is None:
            inputs_embeds = tuner.model.get_input_embeddings()(input_ids)
        if inputs_embeds is not None:
            weight = next((p for p in backbone.parameters() if p.is_floating_point()), None)
            if weight is not None and inputs_embeds.dtype != weight.dtype:
                inputs_embeds = inputs_embeds.to(weight.dtype)  # an fp32 shadow beside a half-precision base
            out = backbone(inputs_embeds=inputs_embeds, **kwargs)
        else:
            out = backbone(input_ids=input_ids, **kwargs)
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is None:
            raise ConfigError(f"The shadow backbone ({type(backbone).__name__}) returned no last_hidden_state.")
        return tuner.shadow_projection[adapter_name](hidden), _cache_of(out)[1]

    def _wrap(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        hidden = args[0] if args else kwargs.get("hidden_states")
        if hidden is None or self.seed_state is None or isinstance(hidden, ShadowCarrier):
            return None
        if hidden.shape[:-1] != self.seed_state.shape[:-1]:
            raise ConfigError(
                f"The shadow state covers positions {tuple(self.seed_state.shape[:-1])} but the first wrapped block "
                f"gets {tuple(hidden.shape[:-1])}. With a KV cache, pass the ShadowCache the previous step returned "
                f"as past_key_values, so the base and the shadow backbone see the same new tokens."
            )
        carrier = ShadowCarrier(hidden, self.seed_state)
        if args:
            return (carrier, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": carrier}

    def _unwrap(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        if isinstance(output, ShadowCarrier):
            return output.hidden
        if isinstance(output, tuple) and output and isinstance(output[0], ShadowCarrier):
            return (output[0].hidden, *output[1:])
        return output

    def _pack(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        if not self._pack_cache:
            return output
        self._pack_cache = False
        shadow_past, self._shadow_past = self._shadow_past, None
        name, base_past = _cache_of(output)
        if name is not None:
            from .cache import ShadowCache

            setattr(output, name, ShadowCache(base=base_past, shadow=shadow_past))
        return output
