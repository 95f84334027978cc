"""`modules_to_save`: fully trainable copies of whole modules (e.g. a classifier head), per adapter.

The original stays at `original_module`; each adapter gets a deep copy in `modules_to_save[name]`.
The file stores the copy under the original module's path (`<path>.weight`), as Hugging Face PEFT does.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from .layer import AdapterTensor
from .mixed_batch import BASE_ADAPTER_NAME, current_batch_plan


class ModulesToSaveWrapper(nn.Module):
    # Named like an adapter layer's containers so status/report code can treat both alike.
    adapter_layer_names: tuple[str, ...] = ("modules_to_save",)
    other_param_names: tuple[str, ...] = ()

    def __init__(self, module_to_save: nn.Module, adapter_name: str) -> None:
        super().__init__()
        self.original_module = module_to_save
        self.modules_to_save = nn.ModuleDict()
        self._active_adapter: list[str] = [adapter_name]
        self._disable_adapters = False
        self.update(adapter_name)

    def update(self, adapter_name: str) -> None:
        if adapter_name not in self.modules_to_save:
            copied = copy.deepcopy(self.original_module)
            copied.requires_grad_(True)
            self.modules_to_save[adapter_name] = copied
        self.original_module.requires_grad_(False)

    def get_base_layer(self) -> nn.Module:
        return self.original_module

    @property
    def weight(self) -> torch.Tensor:
        return self._current().weight

    @property
    def active_adapters(self) -> list[str]:
        return list(self._active_adapter)

    @property
    def disable_adapters(self) -> bool:
        return self._disable_adapters

    @property
    def merged_adapters(self) -> list[str]:
        return []  # a full copy is never merged

    def adapter_names(self) -> list[str]:
        return list(self.modules_to_save)

    @property
    def _adapters(self) -> set[str]:
        """The adapters holding a copy, under Hugging Face PEFT's wrapper attribute name (code written for it reads it)."""
        return set(self.modules_to_save)

    @property
    def active_adapter(self) -> str:
        return self._active_adapter[0]

    def _current(self) -> nn.Module:
        if self._disable_adapters:
            return self.original_module
        for name in self._active_adapter:
            if name in self.modules_to_save:
                return self.modules_to_save[name]
        return self.original_module

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        plan = current_batch_plan()
        if plan is None or self._disable_adapters:
            return self._current()(x, *args, **kwargs)
        if not torch.is_tensor(x) or x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: this modules_to_save module got input {type(x).__name__}"
                f"{tuple(x.shape) if torch.is_tensor(x) else ''} whose first dimension is not the batch of "
                f"{plan.batch_size} rows, so rows can't be routed to their adapters' copies."
            )
        outputs: list[tuple[Any, torch.Tensor]] = []
        for name in plan.groups:
            module = self.modules_to_save[name] if name in self.modules_to_save else self.original_module
            if name == BASE_ADAPTER_NAME:
                module = self.original_module
            rows = plan.rows(name, x.device)
            outputs.append((rows, module(x[rows], *args, **kwargs)))
        first = outputs[0][1]
        result = first.new_empty((x.shape[0], *first.shape[1:]))
        for rows, out in outputs:
            result[rows] = out
        return result

    def check_can_activate(self, adapter_names: Sequence[str]) -> None:
        """A copy replaces the module (it does not add to it): two active adapters can't both have one here."""
        holding = [name for name in adapter_names if name in self.modules_to_save]
        if len(holding) > 1:
            raise ValueError(
                f"Only one adapter can be set at a time for ModulesToSaveWrapper: adapters {holding} each have their "
                f"own copy of this module (modules_to_save), and copies replace the module rather than add up. "
                f"Activate them one at a time, or give them distinct modules_to_save."
            )

    def set_adapter(self, adapter_names: str | Sequence[str], inference_mode: bool = False) -> None:
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        self.check_can_activate(names)
        for name, module in self.modules_to_save.items():
            module.requires_grad_(name in names and not inference_mode)
        self._active_adapter = names

    def enable_adapters(self, enabled: bool) -> None:
        self._disable_adapters = not enabled

    def delete_adapter(self, adapter_name: str) -> None:
        if adapter_name in self.modules_to_save:
            del self.modules_to_save[adapter_name]
        self._active_adapter = [n for n in self._active_adapter if n != adapter_name] or list(self.modules_to_save)[:1]

    def has_adapter(self, adapter_name: str) -> bool:
        return adapter_name in self.modules_to_save

    def adapter_parameters(self, adapter_name: str):
        return self.modules_to_save[adapter_name].parameters() if adapter_name in self.modules_to_save else iter(())

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        if adapter_name not in self.modules_to_save:
            return []
        state = self.modules_to_save[adapter_name].state_dict(keep_vars=True)
        return [AdapterTensor(key, f"modules_to_save.{adapter_name}.{key}", t) for key, t in state.items()]

    def adapter_state_dict_load_map(self, adapter_name: str) -> dict[str, str]:
        """Saved key -> model key (both relative to this wrapper) of the adapter's copy, for loaders such as
        transformers' `load_adapter` that rename file keys themselves."""
        return {t.saved_key: t.model_key for t in self.adapter_tensors(adapter_name)}

    def cast_adapter_dtype(self, adapter_name: str, autocast: bool = True) -> None:
        return None  # copies keep the original module's dtype, as in Hugging Face PEFT

    def unwrapped(self) -> nn.Module:
        """What replaces the wrapper on unload (merging or not): the active copy, as in Hugging Face PEFT."""
        for name in self._active_adapter:
            if name in self.modules_to_save:
                return self.modules_to_save[name]
        return self.original_module
