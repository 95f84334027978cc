"""Tensors an adapter shares across all of its layers, held by the tuner.

Some methods draw frozen random projections or bases once per adapter, sized for the largest layer
the adapter targets, and let every layer use a slice of them. The tuner keeps them in `BufferDict`
stores (model keys `base_model.<store>.<adapter>`), saves an adapter's entries when they were stored
persistent, and drops them with the adapter or when the model is unloaded. `SharedTensorsTuner`
does that bookkeeping; a method names its stores and fills them in `init_shared_tensors`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .buffers import BufferDict
from .layer import AdapterTensor
from .tuner import BaseTuner


class SharedTensorsTuner(BaseTuner):
    """A tuner holding per-adapter shared tensors in the `BufferDict` stores named by `shared_stores`."""

    shared_stores: tuple[str, ...] = ()
    uses_shared_state = True  # its adapters need the tuner: `inject_adapter_in_model` refuses them

    def shared_store(self, name: str) -> BufferDict:
        """The store `name`, created empty on first use (layers keep references to it)."""
        if name not in self._modules:
            setattr(self, name, BufferDict())
        return self._modules[name]  # type: ignore[return-value]

    def create_shared_stores(self) -> None:
        """Every store of `shared_stores`, before injection creates layers that reference them."""
        for name in self.shared_stores:
            self.shared_store(name)

    def _before_injection(self, adapter_name: str) -> None:
        super()._before_injection(adapter_name)
        self.create_shared_stores()

    def _after_injection(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        super()._after_injection(adapter_name, autocast_adapter_dtype)
        self.init_shared_tensors(adapter_name, autocast_adapter_dtype)

    def init_shared_tensors(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        """Hook: fill the stores for `adapter_name`, called once its layers exist (they size the tensors)."""
        raise NotImplementedError(f"{type(self).__name__} must implement init_shared_tensors")

    def draw_for_largest_layer(
        self, adapter_name: str, draw: Callable[[int, int], Sequence[torch.Tensor]], persistent: bool
    ) -> None:
        """Fill the stores for `adapter_name` with `draw(max_in, max_out)`: sized for the largest of its layers,
        moved to their base weights' device and float dtype (see `largest_features`, `on_base_weight`)."""
        layers = [m for m in self.tuner_layers() if m.has_adapter(adapter_name)]
        max_in, max_out = largest_features(layers)
        self.set_shared(adapter_name, on_base_weight(layers[0], *draw(max_in, max_out)), persistent)

    def set_shared(self, adapter_name: str, tensors: Sequence[torch.Tensor], persistent: bool) -> None:
        """Store `adapter_name`'s tensors, one per store of `shared_stores` in order (saved if `persistent`)."""
        for name, tensor in zip(self.shared_stores, tensors, strict=True):
            self.shared_store(name).set(adapter_name, tensor, persistent=persistent)

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        out = super().tuner_tensors(adapter_name)
        for name in self.shared_stores:
            store = self._modules.get(name)
            if store is not None and store.is_persistent(adapter_name):
                out.append(AdapterTensor(name, f"{name}.{adapter_name}", store[adapter_name]))
        return out

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        for name in self.shared_stores:
            store = self._modules.get(name)
            if store is not None and adapter_name in store:
                del store[adapter_name]

    def _unload_tuner_state(self) -> None:
        super()._unload_tuner_state()
        for name in self.shared_stores:
            store = self._modules.get(name)
            if store is not None:
                store.clear()


def largest_features(layers: Sequence[nn.Module]) -> tuple[int, int]:
    """`(in_features, out_features)`, each the largest over `layers`: what shared tensors are sized for."""
    return max(layer.in_features for layer in layers), max(layer.out_features for layer in layers)


def on_base_weight(layer: nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`tensors` moved to the device, and a float base weight's dtype, of `layer`'s base weight (as
    Hugging Face PEFT places shared projections); left as they are while the base is on the meta device."""
    ref = layer.get_base_layer().weight
    if ref.device.type == "meta":
        return tensors
    dtype = ref.dtype if ref.is_floating_point() else None
    return tuple(t.to(ref.device, dtype) for t in tensors)


def sliced_shared(
    store_a: BufferDict,
    store_b: BufferDict,
    adapter_name: str,
    in_features: int,
    out_features: int,
    like: torch.Tensor,
    what: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's slices `A[:, :in_features]`, `B[:out_features, :]` of an adapter's shared pair, on
    `like`'s device and dtype. `what` names the adapter's kind in the error raised once the tuner
    holding the pair was unloaded."""
    if adapter_name not in store_a:
        raise RuntimeError(
            f"{what} adapter {adapter_name!r} has no shared projections: the tuner that created it was unloaded. "
            f"Re-create the adapter with get_peft_model."
        )
    sliced_a = store_a[adapter_name][:, :in_features]
    sliced_b = store_b[adapter_name][:out_features, :]
    return sliced_a.to(like.device, like.dtype), sliced_b.to(like.device, like.dtype)
