"""Wrappers that answer for the model they wrap.

`PeftModel` wraps its tuner and the tuner wraps the user's model; an attribute neither wrapper has (a
transformers config, `generate`, a custom method) is looked up on the wrapped module, as in Hugging
Face PEFT, so the wrapped model's API stays reachable through the wrappers.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def attribute_or_wrapped(module: nn.Module, name: str, wrapped: str) -> Any:
    """For a wrapper's `__getattr__`: `module`'s own attribute `name` (parameter, buffer or submodule),
    else that of the module in its attribute `wrapped`. A missing `wrapped` itself raises AttributeError."""
    try:
        return nn.Module.__getattr__(module, name)
    except AttributeError:
        if name == wrapped:
            raise
        return getattr(getattr(module, wrapped), name)
