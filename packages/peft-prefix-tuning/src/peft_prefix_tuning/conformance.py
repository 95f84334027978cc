"""Prefix tuning's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package
so the kit also runs against an installed wheel (`python -m peft_core.testing prefix_tuning`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Prefixes need a transformers model: one case per task kind, with and
without the projection MLP. Prefix tuning can't merge and refuses mixed-adapter batches; random and
zero prefixes both change the output (attention spreads over them), so there is no no-op start.
Hugging Face PEFT 0.21.2 can't prefix-tune BERT classifiers under transformers 5.x (it passes
`past_key_values`, now called `cache`), so that case stays out of the comparison. The projection MLP
runs on one row here and on every row in Hugging Face's forward: close outputs, not bit-identical.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import PrefixTuningConfig


def _config(task: str, **kwargs):
    return lambda: PrefixTuningConfig(task_type=task, num_virtual_tokens=3, **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="prefix_tuning",
        cases=(
            Case("llama", models.LLAMA, _config("CAUSAL_LM"), second=_config("CAUSAL_LM", prefix_projection=True)),
            Case("llama-projection", models.LLAMA, _config("CAUSAL_LM", prefix_projection=True), exact=False),
            Case("t5-seq2seq", models.T5, _config("SEQ_2_SEQ_LM")),
            Case("bert-seq-cls", models.BERT, _config("SEQ_CLS"), hf=False),
        ),
        random_init={},  # random prefixes (the default)
        noop_init=None, merge=False, mixed_batches=False,  # virtual tokens: never a no-op, nothing to merge
        hf=HuggingFace(exact=False),
        bad_values=(
            {"num_virtual_tokens": 0},
            {"init_weights": "ones"},
            {"encoder_hidden_size": 0},
        ),
    )
