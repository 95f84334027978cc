"""Task wrappers chosen by `task_type`, mirroring Hugging Face PEFT's `PeftModelFor...` classes."""

from __future__ import annotations

from .config import PeftConfig, TaskType
from .peft_model import PeftModel


class _ExtraModulesToSave(PeftModel):
    """Classification-style tasks train their freshly initialised head in full (`modules_to_save`)."""

    head_names: tuple[str, ...] = ()

    def _prepare_task_config(self, peft_config: PeftConfig) -> PeftConfig:
        if hasattr(peft_config, "modules_to_save"):
            current = list(peft_config.modules_to_save or [])
            peft_config.modules_to_save = current + [n for n in self.head_names if n not in current]
        return peft_config


class PeftModelForCausalLM(PeftModel):
    _pipeline_tag = "text-generation"


class PeftModelForSeq2SeqLM(PeftModel):
    pass


class PeftModelForSequenceClassification(_ExtraModulesToSave):
    head_names = ("classifier", "score")


class PeftModelForTokenClassification(_ExtraModulesToSave):
    head_names = ("classifier", "score")


class PeftModelForQuestionAnswering(_ExtraModulesToSave):
    head_names = ("qa_outputs",)


class PeftModelForFeatureExtraction(PeftModel):
    pass


TASK_WRAPPERS: dict[str, type[PeftModel]] = {
    TaskType.CAUSAL_LM.value: PeftModelForCausalLM,
    TaskType.SEQ_2_SEQ_LM.value: PeftModelForSeq2SeqLM,
    TaskType.SEQ_CLS.value: PeftModelForSequenceClassification,
    TaskType.TOKEN_CLS.value: PeftModelForTokenClassification,
    TaskType.QUESTION_ANS.value: PeftModelForQuestionAnswering,
    TaskType.FEATURE_EXTRACTION.value: PeftModelForFeatureExtraction,
}


def wrapper_for_task(task_type: str | None) -> type[PeftModel]:
    return TASK_WRAPPERS.get(str(task_type), PeftModel) if task_type is not None else PeftModel
