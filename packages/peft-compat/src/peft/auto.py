"""`peft.auto`: `AutoPeftModel` and `AutoPeftModelFor*` (peft-core's)."""

from peft_core import auto as _core_auto
from peft_core.auto import *  # noqa: F403  (the names of peft_core.auto.__all__)

from .peft_model import MODEL_TYPE_TO_PEFT_MODEL_MAPPING

__all__ = [*_core_auto.__all__, "MODEL_TYPE_TO_PEFT_MODEL_MAPPING"]
