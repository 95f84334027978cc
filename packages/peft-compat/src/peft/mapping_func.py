"""`peft.mapping_func`: `get_peft_model` (peft-core's)."""

from peft_core import get_peft_model

__all__ = ["get_peft_model"]
