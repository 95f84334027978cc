"""Multitask prompt tuning's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the
package so the kit also runs against an installed wheel (`python -m peft_core.testing multitask_prompt_tuning`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Every forward call needs `task_ids`, so each case's inputs carry one task per row (the base transformers
models ignore the extra argument). On encoder-decoder models the decoder gets virtual tokens too (HF's layout). Like every prompt-learning method it can't merge and refuses
mixed-adapter batches; its random start is never a no-op.
"""

from __future__ import annotations

import torch

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import MultitaskPromptTuningConfig

TASK_IDS = (2, 0, 1, 2)  # one per row of the kit's 4-row inputs


def _with_tasks(model: TinyModel) -> TinyModel:
    return TinyModel(
        f"{model.name}-tasks", model.factory, lambda: {**model.inputs(), "task_ids": torch.tensor(TASK_IDS)}, requires=model.requires
    )


LLAMA_TASKS, BERT_TASKS = _with_tasks(models.LLAMA), _with_tasks(models.BERT)
T5_TASKS = _with_tasks(models.T5)  # the kit's T5 has T5's own initialisation (well-conditioned in bf16)


def conformance() -> Conformance:
    return Conformance(
        method="multitask_prompt_tuning",
        cases=(
            Case(
                "llama-causal-lm",
                LLAMA_TASKS,
                lambda: MultitaskPromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3, num_tasks=3, num_ranks=2),
                second=lambda: MultitaskPromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2, num_tasks=4),
            ),
            Case(
                "llama-sample-vocab",
                LLAMA_TASKS,
                lambda: MultitaskPromptTuningConfig(
                    task_type="CAUSAL_LM", num_virtual_tokens=2, num_tasks=3, prompt_tuning_init="SAMPLE_VOCAB"
                ),
            ),
            # Hugging Face PEFT fails when decoder_input_ids are given (the kit's inputs): compared in the package's
            # tests with decoder inputs built from labels instead
            Case(
                "t5-seq2seq",
                T5_TASKS,
                lambda: MultitaskPromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3, num_tasks=3),
                hf=False,
            ),
            Case("bert-seq-cls", BERT_TASKS, lambda: MultitaskPromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=3, num_tasks=3)),
        ),
        random_init={},
        noop_init=None,
        merge=False,
        mixed_batches=False,
        hf=HuggingFace(),
        bad_values=(
            {"num_tasks": 0},
            {"num_ranks": -1},
            {"prompt_tuning_init": "random"},  # the values are upper case
            {"prompt_tuning_init": "TEXT"},  # without a tokenizer and a text
            {"prompt_tuning_init": "AVERAGE_SOURCE_TASKS"},  # without a source adapter
            {"tokenizer_kwargs": {"use_fast": True}},  # only for TEXT
        ),
    )
