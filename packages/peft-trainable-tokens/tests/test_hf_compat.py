"""File compatibility with Hugging Face PEFT 0.21.2 (TRAINABLE_TOKENS), in both directions.

The same config on the same tiny model in both libraries; each side's trained rows are perturbed,
saved, and loaded by the other library: bit-identical logits, the same keys, shapes and configs.
Covers an untied Llama, a tied Llama (the LM head follows the rows; HF saves them under both paths)
and GPT-2 (tied by default).
"""

from __future__ import annotations

import json
import os
import warnings

import peft_core
import pytest
import torch
from _tt_helpers import logits, perturb
from peft_trainable_tokens import TrainableTokensConfig
from safetensors.torch import load_file

peft = pytest.importorskip("peft")
if peft.__version__ != "0.21.2":
    pytest.skip(f"needs Hugging Face peft 0.21.2, found {peft.__version__}", allow_module_level=True)
pytestmark = pytest.mark.compat


def _files(directory):
    with open(os.path.join(directory, "adapter_config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    config.pop("peft_version")
    state = load_file(os.path.join(directory, "adapter_model.safetensors"))
    return config, {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


@pytest.mark.parametrize("case", ["llama", "llama_tied", "gpt2"])
@pytest.mark.parametrize("config", [dict(token_indices=[3, 5, 7]), dict(token_indices=[5, 1], init_weights=False)])
def test_roundtrip_both_ways(tmp_path, llama, gpt2, ids, case, config):
    make = {"llama": lambda: llama(False), "llama_tied": lambda: llama(True), "gpt2": gpt2}[case]
    base_out = logits(make(), ids)

    hf = peft.get_peft_model(make(), peft.TrainableTokensConfig(**config))
    perturb(hf, 1)
    hf.save_pretrained(tmp_path / "hf")
    expected = logits(hf, ids)
    assert not torch.equal(expected, base_out)
    ours = peft_core.PeftModel.from_pretrained(make(), tmp_path / "hf")
    assert torch.equal(logits(ours, ids), expected)

    mine = peft_core.get_peft_model(make(), TrainableTokensConfig(**config))
    perturb(mine, 2)
    mine.save_pretrained(tmp_path / "ours")
    expected = logits(mine, ids)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = peft.PeftModel.from_pretrained(make(), tmp_path / "ours")
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    assert torch.equal(logits(theirs, ids), expected)
    assert _files(tmp_path / "ours") == _files(tmp_path / "hf")
    if case != "llama":  # tied: the output layer computes with the trained rows too
        head = mine.get_base_model().get_output_embeddings()
        assert torch.equal(head.weight[config["token_indices"]], mine.get_base_model().get_input_embeddings().weight[config["token_indices"]])
