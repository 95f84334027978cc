"""`peft.auto`: `AutoPeftModel` and `AutoPeftModelFor*` (peft-core's)."""

from peft_core.auto import (
    AutoPeftModel,
    AutoPeftModelForCausalLM,
    AutoPeftModelForFeatureExtraction,
    AutoPeftModelForQuestionAnswering,
    AutoPeftModelForSeq2SeqLM,
    AutoPeftModelForSequenceClassification,
    AutoPeftModelForTokenClassification,
)
from peft_core.task_models import TASK_WRAPPERS

MODEL_TYPE_TO_PEFT_MODEL_MAPPING = dict(TASK_WRAPPERS)

__all__ = [
    "AutoPeftModel",
    "AutoPeftModelForCausalLM",
    "AutoPeftModelForFeatureExtraction",
    "AutoPeftModelForQuestionAnswering",
    "AutoPeftModelForSeq2SeqLM",
    "AutoPeftModelForSequenceClassification",
    "AutoPeftModelForTokenClassification",
    "MODEL_TYPE_TO_PEFT_MODEL_MAPPING",
]
