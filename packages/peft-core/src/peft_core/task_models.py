"""Task wrappers chosen by `task_type`, mirroring Hugging Face PEFT's `PeftModelFor...` classes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
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

def _task_forward(*names: str) -> Callable[..., Any]:
    """A `forward` that names the task's arguments (as Hugging Face PEFT's wrappers do: transformers' Trainer
    finds the label arguments, `labels`, `start_positions`, ..., in the class's forward signature) and passes
    on only those the caller gave (not None), so the wrapped model keeps its own defaults."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter("self", kind)]
        + [inspect.Parameter(name, kind, default=None) for name in names]
        + [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation=Any)]
    )

    def forward(self: PeftModel, *args: Any, **kwargs: Any) -> Any:
        given = signature.bind(self, *args, **kwargs).arguments
        del given["self"]
        extra = given.pop("kwargs", {})
        return PeftModel.forward(self, **{k: v for k, v in given.items() if v is not None}, **extra)

    forward.__signature__ = signature  # type: ignore[attr-defined]
    forward.__doc__ = PeftModel.forward.__doc__
    return forward


_TEXT = ("input_ids", "attention_mask", "inputs_embeds")


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
    forward = _task_forward(*_TEXT, "labels")


class PeftModelForSeq2SeqLM(PeftModel):
    forward = _task_forward(*_TEXT, "decoder_input_ids", "decoder_attention_mask", "decoder_inputs_embeds", "labels")


class PeftModelForSequenceClassification(_ExtraModulesToSave):
    head_names = ("classifier", "score")
    forward = _task_forward(*_TEXT, "labels")


class PeftModelForTokenClassification(_ExtraModulesToSave):
    head_names = ("classifier", "score")
    forward = _task_forward(*_TEXT, "labels")


class PeftModelForQuestionAnswering(_ExtraModulesToSave):
    head_names = ("qa_outputs",)
    forward = _task_forward(*_TEXT, "start_positions", "end_positions")


class PeftModelForFeatureExtraction(PeftModel):
    forward = _task_forward(*_TEXT)


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
