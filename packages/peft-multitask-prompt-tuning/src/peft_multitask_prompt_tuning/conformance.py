"""Multitask prompt tuning's cases for peft-core's conformance kit (`python -m peft_core.testing
multitask_prompt_tuning`): the kit's models with a task id per input row."""

from __future__ import annotations

import torch

from peft_core.testing import Conformance, models, on

from .config import MultitaskPromptTuningConfig

TASK_IDS = torch.tensor([2, 0, 1, 2])  # one per row of the kit's 4-row inputs
LLAMA_TASKS = models.LLAMA.variant("llama-tasks", task_ids=TASK_IDS)
BERT_TASKS = models.BERT.variant("bert-tasks", task_ids=TASK_IDS)
# the kit's T5 has T5's own initialisation (well-conditioned in bf16)
T5_TASKS = models.T5.variant("t5-tasks", task_ids=TASK_IDS)


def conformance() -> Conformance:
    return Conformance.of(
        MultitaskPromptTuningConfig,
        on(LLAMA_TASKS, "llama-causal-lm", num_virtual_tokens=3, num_tasks=3, num_ranks=2, second=dict(num_virtual_tokens=2, num_tasks=4)),
        on(LLAMA_TASKS, "llama-sample-vocab", num_virtual_tokens=2, num_tasks=3, prompt_tuning_init="SAMPLE_VOCAB"),
        # Hugging Face PEFT fails when decoder_input_ids are given (the kit's inputs): compared in the package's
        # tests with decoder inputs built from labels instead
        on(T5_TASKS, "t5-seq2seq", num_virtual_tokens=3, num_tasks=3, hf=False),
        on(BERT_TASKS, "bert-seq-cls", num_virtual_tokens=3, num_tasks=3),
        hf=True,
        bad_values=(
            {"num_tasks": 0},
            {"num_ranks": -1},
            {"prompt_tuning_init": "random"},  # the values are upper case
            {"prompt_tuning_init": "TEXT"},  # without a tokenizer and a text
            {"prompt_tuning_init": "AVERAGE_SOURCE_TASKS"},  # without a source adapter
            {"tokenizer_kwargs": {"use_fast": True}},  # only for TEXT
        ),
    )
