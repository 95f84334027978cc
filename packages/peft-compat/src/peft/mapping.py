"""`peft.mapping`: Hugging Face's type -> class tables, as live views of peft-core's method registry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from peft_core import get_peft_config, inject_adapter_in_model
from peft_core.registry import registered_methods

from .utils.peft_types import PeftType


class _RegistryView(Mapping):
    """peft type -> one attribute of each installed method (every installed package is loaded on first use)."""

    def __init__(self, attribute: str, only_mixed: bool = False) -> None:
        self._attribute, self._only_mixed = attribute, only_mixed

    def _table(self) -> dict[str, Any]:
        from peft_core import load_all_methods

        load_all_methods()
        return {
            PeftType(m.peft_type): getattr(m, self._attribute)
            for m in registered_methods().values()
            if m.is_mixed_compatible or not self._only_mixed
        }

    def __getitem__(self, peft_type: str) -> Any:
        return self._table()[str(peft_type).upper()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k!r}: {v!r}' for k, v in self._table().items())}}}"


PEFT_TYPE_TO_CONFIG_MAPPING = _RegistryView("config_cls")
PEFT_TYPE_TO_TUNER_MAPPING = _RegistryView("model_cls")
PEFT_TYPE_TO_MIXED_MODEL_MAPPING = _RegistryView("model_cls", only_mixed=True)
PEFT_TYPE_TO_PREFIX_MAPPING = _RegistryView("prefix")

__all__ = [
    "PEFT_TYPE_TO_CONFIG_MAPPING",
    "PEFT_TYPE_TO_MIXED_MODEL_MAPPING",
    "PEFT_TYPE_TO_PREFIX_MAPPING",
    "PEFT_TYPE_TO_TUNER_MAPPING",
    "get_peft_config",
    "inject_adapter_in_model",
]
