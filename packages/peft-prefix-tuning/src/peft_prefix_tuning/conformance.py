"""Prefix tuning's cases for peft-core's conformance kit (`python -m peft_core.testing prefix_tuning`)."""

from __future__ import annotations

from peft_core.testing import Conformance, HuggingFace, models, on

from .config import PrefixTuningConfig


def conformance() -> Conformance:
    return Conformance.of(
        PrefixTuningConfig,
        on(models.LLAMA, num_virtual_tokens=3, second=dict(num_virtual_tokens=3, prefix_projection=True)),
        on(models.LLAMA, "llama-projection", num_virtual_tokens=3, prefix_projection=True, exact=False),
        on(models.T5, "t5-seq2seq", num_virtual_tokens=3),
        on(models.BERT, "bert-seq-cls", num_virtual_tokens=3, hf=False),
        hf=HuggingFace(exact=False),
        bad_values=(
            {"num_virtual_tokens": 0},
            {"init_weights": "ones"},
            {"encoder_hidden_size": 0},
        ),
    )
