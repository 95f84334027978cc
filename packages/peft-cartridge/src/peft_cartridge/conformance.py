"""CARTRIDGE's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing cartridge`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
A cache prefix needs a transformers model: a decoder (grouped-query attention), an encoder-decoder and a
classifier. It can't merge, refuses mixed-adapter batches and starts from random rows (never a no-op).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import CartridgeConfig


def conformance() -> Conformance:
    return Conformance(
        method="cartridge",
        cases=(
            Case("llama-causal-lm", models.LLAMA, lambda: CartridgeConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)),
            Case(
                "llama-no-frozen-tokens",
                models.LLAMA,
                lambda: CartridgeConfig(task_type="CAUSAL_LM", num_virtual_tokens=2, num_frozen_tokens=0),
            ),
            Case("t5-seq2seq", models.T5, lambda: CartridgeConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3, num_frozen_tokens=2)),
            # Hugging Face PEFT 0.21.2 can't pass a cache prefix to BERT's classifier under transformers 5 ("Model does
            # not support past key values"); core hands it to the encoder, so the case runs here without HF.
            Case("bert-seq-cls", models.BERT, lambda: CartridgeConfig(task_type="SEQ_CLS", num_virtual_tokens=3), hf=False),
        ),
        random_init={},
        noop_init=None,
        merge=False,
        mixed_batches=False,
        hf=HuggingFace(),
        bad_values=({"num_frozen_tokens": -1}, {"num_frozen_tokens": 4}, {"num_virtual_tokens": 0}),
    )
