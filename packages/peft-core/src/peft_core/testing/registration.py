"""How a method package registered itself, checked in one call by its own tests."""

from __future__ import annotations

from typing import Optional, Sequence


def assert_registered(
    peft_type: str,
    name: str,
    prefix: str,
    model_cls: type,
    config_cls: type,
    llama_targets: Optional[Sequence[str]] = None,
) -> None:
    """The registry entry for `peft_type` has this name, tensor-name prefix and classes, and (when given) these
    default targets on Llama."""
    from ..registry import get_peft_method

    method = get_peft_method(peft_type)
    assert (method.name, method.prefix, method.model_cls, method.config_cls) == (name, prefix, model_cls, config_cls)
    if llama_targets is not None:
        assert method.default_target_modules["llama"] == tuple(llama_targets)
