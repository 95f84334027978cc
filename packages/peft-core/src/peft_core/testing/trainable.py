"""What a PEFT model trains and what it saves: one assertion for method packages' bias-mode and
trainable-tensor tests."""

from __future__ import annotations

from typing import Iterable, Optional

from torch import nn


def trainable_names(model: nn.Module) -> set[str]:
    """Names of the parameters that get gradients."""
    return {name for name, param in model.named_parameters() if param.requires_grad}


def assert_trains_and_saves(
    model: nn.Module,
    trainable: Iterable[str],
    saved: Optional[Iterable[str]] = None,
    saved_includes: Iterable[str] = (),
) -> None:
    """Exactly `trainable` train; the adapter file's keys (`get_peft_model_state_dict`) are exactly `saved`
    when given, and include `saved_includes`."""
    from ..state_dict import get_peft_model_state_dict

    trains = trainable_names(model)
    assert trains == set(trainable), f"trainable parameters: {sorted(trains)}"
    keys = set(get_peft_model_state_dict(model))
    if saved is not None:
        assert keys == set(saved), f"saved keys: {sorted(keys)}"
    assert set(saved_includes) <= keys, f"not saved: {sorted(set(saved_includes) - keys)}"
