"""`peft.peft_model`: `PeftModel` and the task wrappers (peft-core's), and the status dataclasses."""

from peft_core import (
    PeftModel,
    PeftModelForCausalLM,
    PeftModelForFeatureExtraction,
    PeftModelForQuestionAnswering,
    PeftModelForSeq2SeqLM,
    PeftModelForSequenceClassification,
    PeftModelForTokenClassification,
)
from peft_core.status import TunerLayerStatus, TunerModelStatus, get_layer_status, get_model_status
from peft_core.task_models import TASK_WRAPPERS

MODEL_TYPE_TO_PEFT_MODEL_MAPPING = dict(TASK_WRAPPERS)

__all__ = [
    "MODEL_TYPE_TO_PEFT_MODEL_MAPPING",
    "PeftModel",
    "PeftModelForCausalLM",
    "PeftModelForFeatureExtraction",
    "PeftModelForQuestionAnswering",
    "PeftModelForSeq2SeqLM",
    "PeftModelForSequenceClassification",
    "PeftModelForTokenClassification",
    "TunerLayerStatus",
    "TunerModelStatus",
    "get_layer_status",
    "get_model_status",
]
