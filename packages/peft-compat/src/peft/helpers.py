"""`peft.helpers` (peft-core's helpers)."""

from peft_core.helpers import check_if_peft_model, rescale_adapter_scale

__all__ = ["check_if_peft_model", "rescale_adapter_scale"]
