"""`peft.utils.peft_types`: `PeftType` (enum-like, Hugging Face's members plus any installed method) and `TaskType`."""

from peft_core import TaskType
from peft_core.registry import PeftTypeLookup

from .._hf_api import HF_PEFT_TYPES

# Hugging Face's members are valid names even where no package provides the method (programs compare
# a config's type with e.g. PeftType.LORA without having every method installed).
PeftType = PeftTypeLookup(known=HF_PEFT_TYPES)

__all__ = ["PeftType", "TaskType"]
