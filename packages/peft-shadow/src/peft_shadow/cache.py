"""`ShadowCache`: the base model's KV cache and the shadow backbone's, carried as one `past_key_values`.

Incremental decoding must advance both the base model (its cache holds keys/values computed under
the injection) and the shadow backbone (so the shadow state of a new token sees the earlier ones).
Layout changes (reset, reorder for beams, crop, repeat, select) apply to both; everything the
attention layers ask goes to the base cache. Imports transformers: load it only when decoding.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Cache


class ShadowCache(Cache):
    __slots__ = ("base", "shadow")

    def __init__(self, base: Any = None, shadow: Any = None) -> None:
        # Cache.__init__ is not called: the storage belongs to the two wrapped caches
        self.base = base
        self.shadow = shadow

    def __getattr__(self, name: str) -> Any:
        base = object.__getattribute__(self, "base")
        if base is None:
            raise AttributeError(name)
        return getattr(base, name)

    def _both(self, method: str, *args: Any) -> None:
        for cache in (self.base, self.shadow):
            fn = getattr(cache, method, None) if cache is not None else None
            if fn is not None:
                fn(*args)

    # -- what attention layers use: the base cache ------------------------------------------
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        if self.base is None:
            raise RuntimeError("A ShadowCache without a base cache can't be updated.")
        return self.base.update(key_states, value_states, layer_idx, *args, **kwargs)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0 if self.base is None else self.base.get_seq_length(layer_idx)

    def get_mask_sizes(self, *args: Any, **kwargs: Any) -> Any:
        if self.base is None:
            query = args[0] if args else kwargs.get("query_length", kwargs.get("cache_position"))
            return (query if isinstance(query, int) else query.shape[0]), 0
        return self.base.get_mask_sizes(*args, **kwargs)

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return -1 if self.base is None else self.base.get_max_cache_shape(layer_idx)

    def update_conv_state(self, *args: Any, **kwargs: Any) -> Any:
        return self.base.update_conv_state(*args, **kwargs)

    def update_recurrent_state(self, *args: Any, **kwargs: Any) -> Any:
        return self.base.update_recurrent_state(*args, **kwargs)

    def update_indexer(self, *args: Any, **kwargs: Any) -> Any:
        return self.base.update_indexer(*args, **kwargs)

    def has_previous_state(self, *args: Any, **kwargs: Any) -> bool:
        return False if self.base is None else self.base.has_previous_state(*args, **kwargs)

    @property
    def max_batch_size(self) -> int:
        return 0 if self.base is None else self.base.max_batch_size

    @property
    def max_cache_len(self) -> int:
        return 0 if self.base is None else self.base.max_cache_len

    @property
    def is_compileable(self) -> bool:
        return False  # two caches of different layouts are not one compileable cache

    @property
    def is_initialized(self) -> bool:
        caches = [c for c in (self.base, self.shadow) if c is not None]
        return bool(caches) and all(getattr(c, "is_initialized", True) for c in caches)

    @property
    def is_sliding(self) -> list[bool]:
        return [] if self.base is None else self.base.is_sliding

    # -- layout changes: both caches --------------------------------------------------------
    def reset(self) -> None:
        self._both("reset")

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._both("reorder_cache", beam_idx)

    def crop(self, max_length: int) -> None:
        self._both("crop", max_length)

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._both("batch_repeat_interleave", repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._both("batch_select_indices", indices)

    def to_legacy_cache(self) -> Any:
        raise NotImplementedError("A ShadowCache holds two caches; it has no single legacy tuple form.")

    @classmethod
    def from_legacy_cache(cls, past_key_values: Any = None) -> ShadowCache:
        raise NotImplementedError("A ShadowCache is built from a base and a shadow Cache, not a legacy tuple.")

    def __getitem__(self, layer_idx: int) -> Any:
        return self.base[layer_idx]

    def __iter__(self):
        return iter(self.base)

    def __len__(self) -> int:
        return 0 if self.base is None else len(self.base)

    def __repr__(self) -> str:
        return f"ShadowCache(base={self.base!r}, shadow={self.shadow!r})"
