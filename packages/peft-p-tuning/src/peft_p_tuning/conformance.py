"""P-tuning's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing p_tuning`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Virtual tokens need a transformers model: one case per task kind, with
the MLP and the LSTM encoder. P-tuning can't merge and refuses mixed-adapter batches; its random
encoder is never a no-op. A saved adapter holds the encoder's output, which a live model recomputes
(the LSTM's rounding differs), so outputs across a save are compared closely, not bit for bit.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import PromptEncoderConfig


def _config(task: str, **kwargs):
    return lambda: PromptEncoderConfig(task_type=task, num_virtual_tokens=3, encoder_hidden_size=24, **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="p_tuning",
        cases=(
            Case("llama-mlp", models.LLAMA, _config("CAUSAL_LM"), second=_config("CAUSAL_LM", encoder_reparameterization_type="LSTM")),
            Case("llama-lstm", models.LLAMA, _config("CAUSAL_LM", encoder_reparameterization_type="LSTM", encoder_num_layers=1), exact=False),
            Case("t5-seq2seq", models.T5, _config("SEQ_2_SEQ_LM", encoder_reparameterization_type="LSTM"), exact=False),
            Case("bert-seq-cls", models.BERT, _config("SEQ_CLS")),
        ),
        random_init={},  # the encoder starts random
        noop_init=None, merge=False, mixed_batches=False,  # virtual tokens: never a no-op, nothing to merge
        hf=HuggingFace(exact=False),
        bad_values=(
            {"num_virtual_tokens": 0},
            {"encoder_reparameterization_type": "GRU"},
            {"encoder_hidden_size": 0},
            {"encoder_num_layers": 0},
        ),
    )
