"""Prompt tuning's cases for peft-core's conformance kit (`python -m peft_core.testing prompt_tuning`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import PromptTuningConfig


def conformance() -> Conformance:
    return Conformance.of(
        PromptTuningConfig,
        on(models.LLAMA, "llama-causal-lm", num_virtual_tokens=3),
        on(models.LLAMA, "llama-sample-vocab", num_virtual_tokens=2, prompt_tuning_init="SAMPLE_VOCAB"),
        on(models.T5, "t5-seq2seq", num_virtual_tokens=3),
        on(models.BERT, "bert-seq-cls", num_virtual_tokens=3),
        hf=True,
        bad_values=(
            {"num_virtual_tokens": 0},
            {"prompt_tuning_init": "text"},  # the values are upper case
            {"prompt_tuning_init": "TEXT"},  # without a tokenizer and a text
            {"tokenizer_kwargs": {"use_fast": True}},  # only for TEXT
        ),
    )
