"""`peft.utils.other`: wrappers and helpers Hugging Face keeps here (peft-core's).

`AuxiliaryTrainingWrapper` is Hugging Face's base of `ModulesToSaveWrapper`; transformers checks
modules against it when loading adapters. peft-core has one such wrapper, so the two names are one class.
`prepare_model_for_kbit_training` is peft-core's (see its QLoRA support); the name resolves on use.
"""

from __future__ import annotations

from typing import Any

from peft_core import ModulesToSaveWrapper
from peft_core.helpers import cast_mixed_precision_params, get_submodules, shift_tokens_right

AuxiliaryTrainingWrapper = ModulesToSaveWrapper
_get_submodules = get_submodules


def infer_device() -> str:
    """"cuda", "mps", "xpu", ... when that accelerator is available, else "cpu"."""
    import torch

    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and accelerator.is_available():
        return accelerator.current_accelerator().type
    return "cpu"


def __getattr__(name: str) -> Any:
    if name == "prepare_model_for_kbit_training":
        import peft_core

        try:
            return peft_core.prepare_model_for_kbit_training
        except AttributeError:
            from .._lazy import missing_message

            raise AttributeError(
                missing_message(name) + " (the installed peft-core has no prepare_model_for_kbit_training)"
            ) from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuxiliaryTrainingWrapper",
    "ModulesToSaveWrapper",
    "cast_mixed_precision_params",
    "infer_device",
    "prepare_model_for_kbit_training",
    "shift_tokens_right",
]
