"""`BufferDict`: per-adapter tensors that move with the model but never train.

Some methods keep non-trainable tensors per adapter: frozen random bases shared by every layer,
sparse index lists, a norm captured from the base weight. Held as buffers they follow `.to()` and
`.cuda()` with the model and stay out of `parameters()` (so optimisers and `requires_grad` flips
never see them). Each entry decides whether `state_dict()` includes it, so one container can hold
an adapter whose tensors are saved next to one whose tensors are regenerated on load.

A `BufferDict` can be listed in a layer's `adapter_layer_names`: `BaseTunerLayer` saves, loads,
moves and deletes its entries like parameters, keeps them buffers, and never casts an integer
entry to a float dtype.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn


class BufferDict(nn.Module):
    """Tensors keyed by adapter name, registered as buffers of this module."""

    def __init__(self, persistent: bool = True) -> None:
        super().__init__()
        self.default_persistent = persistent

    def __contains__(self, key: object) -> bool:
        return key in self._buffers

    def __getitem__(self, key: str) -> torch.Tensor:
        value = self._buffers[key]
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        """Replace or add an entry; a replaced entry keeps its persistence, a new one gets the default."""
        persistent = key not in self._non_persistent_buffers_set if key in self._buffers else self.default_persistent
        self.set(key, value, persistent=persistent)

    def set(self, key: str, value: torch.Tensor, persistent: bool | None = None) -> None:
        if persistent is None:
            persistent = self.default_persistent
        if key in self._buffers:
            del self[key]
        self.register_buffer(key, value, persistent=persistent)

    def is_persistent(self, key: str) -> bool:
        return key in self._buffers and key not in self._non_persistent_buffers_set

    def __delitem__(self, key: str) -> None:
        del self._buffers[key]
        self._non_persistent_buffers_set.discard(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._buffers))

    def __len__(self) -> int:
        return len(self._buffers)

    def keys(self) -> list[str]:
        return list(self._buffers)

    def values(self) -> list[torch.Tensor]:
        return [v for v in self._buffers.values() if v is not None]

    def items(self) -> list[tuple[str, torch.Tensor]]:
        return [(k, v) for k, v in self._buffers.items() if v is not None]

    def clear(self) -> None:
        for key in list(self._buffers):
            del self[key]

    def extra_repr(self) -> str:
        return ", ".join(f"{k}: {tuple(v.shape)} {v.dtype}" for k, v in self.items())
