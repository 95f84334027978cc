"""PEANuT's activation by name, as transformers' `ACT2FN` names them (Hugging Face PEFT's vocabulary).

The common ones are the very torch functions transformers runs for those names, so no import of
transformers is needed for them; any other name is looked up in `transformers.activations.ACT2FN`
(imported only then) so that every name Hugging Face PEFT accepts computes the same here.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]

BUILTIN: dict[str, Activation] = {
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": F.silu,
    "swish": F.silu,
    "gelu": F.gelu,
    "gelu_pytorch_tanh": functools.partial(F.gelu, approximate="tanh"),
    "hardswish": F.hardswish,
    "linear": lambda x: x,
}


def _transformers_names() -> frozenset[str] | None:
    try:
        from transformers.activations import ACT2FN
    except ImportError:
        return None
    return frozenset(ACT2FN)


def unknown_activation(name: object) -> str | None:
    """Why `name` can't be used (None when it can)."""
    if isinstance(name, str) and name in BUILTIN:
        return None
    known = _transformers_names()
    if known is None:
        return (
            f"act_fn={name!r} is not one of the built-in activations {sorted(BUILTIN)}; other names are "
            f"transformers' activations, and transformers is not installed (pip install transformers)."
        )
    if name not in known:
        return f"act_fn={name!r} is not a transformers activation; use one of {sorted(known)}."
    return None


def activation(name: str) -> Activation:
    """The function for `name` (a fresh transformers module per call for names outside the built-ins, as HF does)."""
    found = BUILTIN.get(name)
    if found is not None:
        return found
    from transformers.activations import ACT2FN

    return ACT2FN[name]
