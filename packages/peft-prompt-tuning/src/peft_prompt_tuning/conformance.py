"""Prompt tuning's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing prompt_tuning`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Virtual tokens need a transformers model: one case per task kind.
Prompt tuning can't merge and refuses mixed-adapter batches; its random start is never a no-op.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import PromptTuningConfig


def conformance() -> Conformance:
    return Conformance(
        method="prompt_tuning",
        cases=(
            Case("llama-causal-lm", models.LLAMA, lambda: PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)),
            Case(
                "llama-sample-vocab",
                models.LLAMA,
                lambda: PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2, prompt_tuning_init="SAMPLE_VOCAB"),
            ),
            Case("t5-seq2seq", models.T5, lambda: PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3)),
            Case("bert-seq-cls", models.BERT, lambda: PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=3)),
        ),
        random_init={},  # RANDOM (the default) and SAMPLE_VOCAB start from non-trivial tokens
        noop_init=None,
        merge=False,
        mixed_batches=False,
        hf=HuggingFace(),
        bad_values=(
            {"num_virtual_tokens": 0},
            {"prompt_tuning_init": "text"},  # the values are upper case
            {"prompt_tuning_init": "TEXT"},  # without a tokenizer and a text
            {"tokenizer_kwargs": {"use_fast": True}},  # only for TEXT
        ),
    )
