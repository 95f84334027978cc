"""`peft.utils`: the helpers Hugging Face PEFT exports from `peft.utils` (peft-core's)."""

from __future__ import annotations

from typing import Any

from peft_core import get_peft_model_state_dict, load_peft_weights, set_peft_model_state_dict

from .constants import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME
from .other import (
    AuxiliaryTrainingWrapper,
    ModulesToSaveWrapper,
    _get_submodules,
    cast_mixed_precision_params,
    infer_device,
    shift_tokens_right,
)
from .peft_types import PeftType, TaskType
from .save_and_load import get_base_model_state_dict, set_base_model_state_dict


def __getattr__(name: str) -> Any:
    if name == "prepare_model_for_kbit_training":
        from . import other

        return other.prepare_model_for_kbit_training
    if name.startswith("TRANSFORMERS_MODELS_TO_"):
        from . import constants

        return getattr(constants, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONFIG_NAME",
    "SAFETENSORS_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "AuxiliaryTrainingWrapper",
    "ModulesToSaveWrapper",
    "PeftType",
    "TaskType",
    "_get_submodules",
    "cast_mixed_precision_params",
    "get_base_model_state_dict",
    "get_peft_model_state_dict",
    "infer_device",
    "load_peft_weights",
    "prepare_model_for_kbit_training",
    "set_base_model_state_dict",
    "set_peft_model_state_dict",
    "shift_tokens_right",
]
