"""CARTRIDGE's cases for peft-core's conformance kit (`python -m peft_core.testing cartridge`); a cache prefix
needs a transformers model."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import CartridgeConfig


def conformance() -> Conformance:
    return Conformance.of(
        CartridgeConfig,
        on(models.LLAMA, "llama-causal-lm", num_virtual_tokens=3),
        on(models.LLAMA, "llama-no-frozen-tokens", num_virtual_tokens=2, num_frozen_tokens=0),
        on(models.T5, "t5-seq2seq", num_virtual_tokens=3, num_frozen_tokens=2),
        # Hugging Face PEFT 0.21.2 can't pass a cache prefix to BERT's classifier under transformers 5 ("Model does
        # not support past key values"); core hands it to the encoder, so the case runs here without HF.
        on(models.BERT, "bert-seq-cls", num_virtual_tokens=3, hf=False),
        hf=True,
        bad_values=({"num_frozen_tokens": -1}, {"num_frozen_tokens": 4}, {"num_virtual_tokens": 0}),
    )
