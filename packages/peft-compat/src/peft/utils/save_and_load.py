"""`peft.utils.save_and_load`: adapter and base-model state dicts, adapter weight files (peft-core's)."""

from peft_core import get_peft_model_state_dict, load_peft_weights, set_peft_model_state_dict
from peft_core.base_state_dict import get_base_model_state_dict, set_base_model_state_dict

__all__ = [
    "get_base_model_state_dict",
    "get_peft_model_state_dict",
    "load_peft_weights",
    "set_base_model_state_dict",
    "set_peft_model_state_dict",
]
