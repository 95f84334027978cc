"""File compatibility with Hugging Face PEFT 0.21.2 beyond the conformance kit's cases (untied Llama, tied
GPT-2): a Llama with tied embeddings, where both libraries save the shared rows under the input embedding's
and the LM head's paths, and the head computes with the trained rows.
"""

from __future__ import annotations

import peft_core
import pytest
import torch
from _tt_helpers import logits, perturb
from peft_core.testing.hf import both_ways, hf_peft
from peft_trainable_tokens import TrainableTokensConfig

pytestmark = pytest.mark.compat


@pytest.mark.parametrize("config", [dict(token_indices=[3, 5, 7]), dict(token_indices=[5, 1], init_weights=False)])
def test_tied_llama_both_ways(tmp_path, llama, ids, config):
    peft = hf_peft()
    if peft is None:
        pytest.skip("needs Hugging Face peft 0.21.2")
    problems = both_ways(
        lambda: llama(True),
        TrainableTokensConfig(**config),
        peft.TrainableTokensConfig(**config),
        lambda model: logits(model, ids),
        tmp_path,
        prepare=lambda model: perturb(model, 1),
    )
    assert problems == []
    mine = peft_core.PeftModel.from_pretrained(llama(True), tmp_path / "hf")
    assert not torch.equal(logits(mine, ids), logits(llama(True), ids))
    inner = mine.get_base_model()
    rows = config["token_indices"]
    assert torch.equal(inner.get_output_embeddings().weight[rows], inner.get_input_embeddings().weight[rows])
