"""P-tuning's cases for peft-core's conformance kit (`python -m peft_core.testing p_tuning`)."""

from __future__ import annotations

from peft_core.testing import Conformance, HuggingFace, models, on

from .config import PromptEncoderConfig

LSTM = {"encoder_reparameterization_type": "LSTM"}
SIZES = {"num_virtual_tokens": 3, "encoder_hidden_size": 24}


def conformance() -> Conformance:
    return Conformance.of(
        PromptEncoderConfig,
        on(models.LLAMA, "llama-mlp", **SIZES, second=dict(**SIZES, **LSTM)),
        on(models.LLAMA, "llama-lstm", **SIZES, **LSTM, encoder_num_layers=1, exact=False),
        on(models.T5, "t5-seq2seq", **SIZES, **LSTM, exact=False),
        on(models.BERT, "bert-seq-cls", **SIZES),
        hf=HuggingFace(exact=False),
        bad_values=(
            {"num_virtual_tokens": 0},
            {"encoder_reparameterization_type": "GRU"},
            {"encoder_hidden_size": 0},
            {"encoder_num_layers": 0},
        ),
    )
