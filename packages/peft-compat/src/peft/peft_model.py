"""`peft.peft_model`: `PeftModel` and the task wrappers (peft-core's), and the status dataclasses."""

from peft_core import task_models as _core_task_models
from peft_core.peft_model import PeftModel
from peft_core.status import TunerLayerStatus, TunerModelStatus, get_layer_status, get_model_status
from peft_core.task_models import *  # noqa: F403  (the PeftModelFor* task wrappers: peft_core.task_models.__all__)
from peft_core.task_models import TASK_WRAPPERS

MODEL_TYPE_TO_PEFT_MODEL_MAPPING = dict(TASK_WRAPPERS)

__all__ = [
    "MODEL_TYPE_TO_PEFT_MODEL_MAPPING",
    "PeftModel",
    *_core_task_models.__all__,
    "TunerLayerStatus",
    "TunerModelStatus",
    "get_layer_status",
    "get_model_status",
]
