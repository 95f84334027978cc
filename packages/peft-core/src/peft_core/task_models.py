"""Task wrappers chosen by `task_type`, mirroring Hugging Face PEFT's `PeftModelFor...` classes."""

from __future__ import annotations

from typing import Any

from .config import PeftConfig, TaskType
from .peft_model import PeftModel

# What `peft_core` (and peft-compat's `peft.peft_model`) re-export from here.
__all__ = [
    "PeftModelForCausalLM",
    "PeftModelForFeatureExtraction",
    "PeftModelForQuestionAnswering",
    "PeftModelForSeq2SeqLM",
    "PeftModelForSequenceClassification",
    "PeftModelForTokenClassification",
]

def _given(**named: Any) -> dict[str, Any]:
    """The named arguments the caller passed (not None): the wrapped model keeps its own defaults."""
    return {k: v for k, v in named.items() if v is not None}


class _ExtraModulesToSave(PeftModel):
    """Classification-style tasks train their freshly initialised head in full (`modules_to_save`)."""

    head_names: tuple[str, ...] = ()

    def _prepare_task_config(self, peft_config: PeftConfig) -> PeftConfig:
        if hasattr(peft_config, "modules_to_save"):
            current = list(peft_config.modules_to_save or [])
            peft_config.modules_to_save = current + [n for n in self.head_names if n not in current]
        return peft_config


# The task wrappers name their task's arguments in `forward` (as Hugging Face PEFT's do): transformers'
# Trainer finds the label arguments (`labels`, `start_positions`, ...) in the class's forward signature.


class PeftModelForCausalLM(PeftModel):
    _pipeline_tag = "text-generation"

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs: Any) -> Any:
        named = _given(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, labels=labels)
        return super().forward(**named, **kwargs)


class PeftModelForSeq2SeqLM(PeftModel):
    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        decoder_inputs_embeds=None,
        labels=None,
        **kwargs: Any,
    ) -> Any:
        named = _given(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            decoder_inputs_embeds=decoder_inputs_embeds,
            labels=labels,
        )
        return super().forward(**named, **kwargs)


class PeftModelForSequenceClassification(_ExtraModulesToSave):
    head_names = ("classifier", "score")

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs: Any) -> Any:
        named = _given(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, labels=labels)
        return super().forward(**named, **kwargs)


class PeftModelForTokenClassification(_ExtraModulesToSave):
    head_names = ("classifier", "score")

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs: Any) -> Any:
        named = _given(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, labels=labels)
        return super().forward(**named, **kwargs)


class PeftModelForQuestionAnswering(_ExtraModulesToSave):
    head_names = ("qa_outputs",)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        start_positions=None,
        end_positions=None,
        **kwargs: Any,
    ) -> Any:
        named = _given(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            start_positions=start_positions,
            end_positions=end_positions,
        )
        return super().forward(**named, **kwargs)


class PeftModelForFeatureExtraction(PeftModel):
    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs: Any) -> Any:
        named = _given(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)
        return super().forward(**named, **kwargs)


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
