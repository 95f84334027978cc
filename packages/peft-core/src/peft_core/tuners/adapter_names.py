"""Which adapter names are allowed: a name becomes a key component, a folder name and a module attribute."""

from __future__ import annotations

import re

from torch import nn

from ..errors import AdapterNameError
from .mixed_batch import BASE_ADAPTER_NAME

_ADAPTER_NAME_RE = re.compile(r"[^./\\\s]+")
_ADAPTER_CONTAINERS = (nn.ModuleDict(), nn.ParameterDict())


def validate_adapter_name(adapter_name: object) -> str:
    """Reject names that would break keys, paths or module attributes, before anything is created."""
    if not isinstance(adapter_name, str) or not adapter_name:
        raise AdapterNameError(f"Adapter names must be non-empty strings, got {adapter_name!r}. Use e.g. 'my_adapter'.")
    if (
        not _ADAPTER_NAME_RE.fullmatch(adapter_name)
        or not adapter_name.isprintable()
        or adapter_name in ("..", BASE_ADAPTER_NAME)
    ):
        raise AdapterNameError(
            f"Invalid adapter name {adapter_name!r}: it must not contain '.', '/', '\\', spaces or control characters "
            f"(it becomes a key component and a folder name) and must not be {BASE_ADAPTER_NAME!r}. Use e.g. 'my_adapter'."
        )
    if any(hasattr(container, adapter_name) for container in _ADAPTER_CONTAINERS):
        raise AdapterNameError(
            f"Invalid adapter name {adapter_name!r}: it collides with an attribute of torch's ModuleDict/ParameterDict, "
            f"which hold adapters by name; choose another name, e.g. '{adapter_name}_adapter'."
        )
    return adapter_name
