"""Per-adapter state owned by the tuner itself rather than by one layer.

Some methods keep tensors that every adapted layer shares (VB-LoRA's vector bank) or modules that
look at the whole model (X-LoRA's classifier). They live on the tuner, keyed by adapter name, and
must behave like a layer's adapter tensors: train only while their adapter is active, follow
`autocast_adapter_dtype`, disappear with `delete_adapter`, and be saved as `base_model.<attr>...`
with the adapter name dropped (Hugging Face PEFT's file layout).

`TunerParameterDict` (entries are parameters) and `TunerModuleDict` (entries are modules) speak the
adapter-module protocol `BaseTuner` drives (`has_adapter`, `set_adapter`, `delete_adapter`, ...). Assigned
as attributes of a tuner, they are found by `BaseTuner`: its `adapter_modules()` yields them and its
`tuner_tensors()` saves their entries as `base_model.<attr>[.<key>]`; `unload()` empties them.

    def inject_adapter(self, model, adapter_name, **kwargs):
        if "vector_bank" not in self._modules:
            self.vector_bank = TunerParameterDict()
        ...
        self.vector_bank[adapter_name] = nn.Parameter(bank)
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch import nn

from .layer import AdapterTensor


class TunerState:
    """The adapter-module protocol over a dict of per-adapter entries (a module or a parameter each)."""

    _disable_adapters: bool = False

    def _entries(self) -> dict[str, Any]:
        raise NotImplementedError

    def _entry_parameters(self, entry: Any) -> Iterable[nn.Parameter]:
        raise NotImplementedError

    @property
    def disable_adapters(self) -> bool:
        return self._disable_adapters

    def has_adapter(self, adapter_name: str) -> bool:
        return adapter_name in self._entries()

    def adapter_parameters(self, adapter_name: str) -> list[nn.Parameter]:
        entry = self._entries().get(adapter_name)
        return [] if entry is None else list(self._entry_parameters(entry))

    def set_adapter(self, adapter_names: str | Sequence[str], inference_mode: bool = False) -> None:
        """Only the entries of `adapter_names` train (none in inference mode)."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for name, entry in self._entries().items():
            trainable = name in names and not inference_mode
            for param in self._entry_parameters(entry):
                param.requires_grad_(trainable)

    def enable_adapters(self, enabled: bool) -> None:
        self._disable_adapters = not enabled

    def delete_adapter(self, adapter_name: str) -> None:
        if adapter_name in self._entries():
            del self[adapter_name]  # type: ignore[attr-defined]

    def cast_adapter_dtype(self, adapter_name: str, autocast: bool = True) -> None:
        """fp16/bf16 entries become fp32 (Hugging Face PEFT's `autocast_adapter_dtype=True`)."""
        entry = self._entries().get(adapter_name)
        if not autocast or entry is None:
            return
        for param in self._entry_parameters(entry):
            if param.dtype in (torch.float16, torch.bfloat16):
                param.data = param.data.float()

    def adapter_tensors(self, adapter_name: str, attr: str) -> list[AdapterTensor]:
        """The saved tensors of `adapter_name`, keyed relative to the tuner (`attr` is this dict's
        attribute name on it): the adapter name is dropped from the saved keys."""
        entry = self._entries().get(adapter_name)
        if entry is None:
            return []
        if isinstance(entry, nn.Module):
            return [
                AdapterTensor(f"{attr}.{key}", f"{attr}.{adapter_name}.{key}", tensor)
                for key, tensor in entry.state_dict(keep_vars=True).items()
            ]
        return [AdapterTensor(attr, f"{attr}.{adapter_name}", entry)]


class TunerParameterDict(TunerState, nn.ParameterDict):
    """Parameters keyed by adapter name, held by the tuner (e.g. a bank every layer draws from)."""

    def _entries(self) -> dict[str, Any]:
        return self._parameters  # type: ignore[return-value]

    def _entry_parameters(self, entry: Any) -> Iterable[nn.Parameter]:
        return (entry,)


class TunerModuleDict(TunerState, nn.ModuleDict):
    """Modules keyed by adapter name, held by the tuner (e.g. a classifier over the whole model)."""

    def _entries(self) -> dict[str, Any]:
        return self._modules  # type: ignore[return-value]

    def _entry_parameters(self, entry: Any) -> Iterable[nn.Parameter]:
        return entry.parameters()


__all__ = ["TunerModuleDict", "TunerParameterDict", "TunerState"]
