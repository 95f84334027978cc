"""Both-direction compatibility with Hugging Face PEFT 0.21.2 (imported only here)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from _prefix_tuning_support import MAKERS, batch, comparable_config, greedy_by_forward, read_config, read_weights, run

from peft_core import PeftModel, get_peft_model
from peft_prefix_tuning import PrefixTuningConfig

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.compat

# HF PEFT 0.21.2 can't prefix-tune BERT classifiers under transformers 5.x (it looks for a
# `past_key_values` argument, now called `cache`), so HF comparisons use Llama, T5 and BertModel.
CASES = [
    ("CAUSAL_LM", False),
    ("CAUSAL_LM", True),
    ("SEQ_2_SEQ_LM", False),
    ("SEQ_2_SEQ_LM", True),
    ("FEATURE_EXTRACTION", False),
]


def _pair(task, projection=False):
    kwargs = {"task_type": task, "num_virtual_tokens": 3, "prefix_projection": projection}
    torch.manual_seed(1)
    hf = peft.get_peft_model(MAKERS[task](), peft.PrefixTuningConfig(**kwargs))
    torch.manual_seed(1)
    ours = get_peft_model(MAKERS[task](), PrefixTuningConfig(**kwargs))
    return hf.eval(), ours.eval()


def test_config_fields_match_hf():
    ours = {f.name: f.default for f in dataclasses.fields(PrefixTuningConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(peft.PrefixTuningConfig)}
    assert set(ours) == set(theirs)
    assert all(ours[n] == theirs[n] for n in ours if n not in ("peft_type", "peft_version"))


def test_gqa_fields_on_tiny_llama():
    _, ours = _pair("CAUSAL_LM")
    config = ours.peft_config["default"]
    assert (config.token_dim, config.num_attention_heads, config.num_layers, config.encoder_hidden_size) == (16, 2, 2, 16)
    assert tuple(ours.base_model.prompt_matrix().shape) == (3, 64)


@pytest.mark.parametrize("task,projection", CASES)
def test_same_forward_config_and_file_as_hf(task, projection, tmp_path):
    hf, ours = _pair(task, projection)
    a, b = run(hf, task), run(ours, task)
    if projection:  # HF runs the MLP on every row of the batch, we on one row: float rounding only
        assert torch.allclose(a, b, atol=1e-5)
    else:
        assert torch.equal(a, b)
    hf.save_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    assert comparable_config(read_config(tmp_path / "ours")) == comparable_config(read_config(tmp_path / "hf"))
    wa, wb = read_weights(tmp_path / "hf"), read_weights(tmp_path / "ours")
    assert {k: (v.shape, v.dtype) for k, v in wa.items()} == {k: (v.shape, v.dtype) for k, v in wb.items()}
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("task,projection", CASES)
def test_hf_adapter_loads_here(task, projection, tmp_path):
    hf, _ = _pair(task, projection)
    trained = run(hf, task)
    hf.save_pretrained(tmp_path)
    reloaded_in_hf = run(peft.PeftModel.from_pretrained(MAKERS[task](), tmp_path), task)
    got = run(PeftModel.from_pretrained(MAKERS[task](), tmp_path), task)
    assert torch.equal(got, reloaded_in_hf)
    assert torch.allclose(got, trained, atol=1e-5)


@pytest.mark.parametrize("task,projection", CASES)
def test_our_adapter_loads_in_hf(task, projection, tmp_path):
    _, ours = _pair(task, projection)
    ours.save_pretrained(tmp_path)
    ours_reloaded = run(PeftModel.from_pretrained(MAKERS[task](), tmp_path), task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = peft.PeftModel.from_pretrained(MAKERS[task](), tmp_path)
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    assert torch.equal(run(loaded, task), ours_reloaded)
    assert torch.allclose(ours_reloaded, run(ours, task), atol=1e-5)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_equals_greedy_decoding_of_hf_forward(task):
    # HF PEFT 0.21.2's own generate drops the prefix under transformers 5.x (it passes `past_key_values`
    # next to transformers' `cache`, which wins), so the reference is greedy decoding with HF's forward.
    hf, ours = _pair(task)
    ids, mask = batch()
    if task == "CAUSAL_LM":
        mask = torch.ones_like(ids)  # forward() numbers tokens after the prefix without looking at padding
        expected = _greedy_unpadded(hf, ids)
    else:
        expected = greedy_by_forward(hf, task)
    got = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, expected)


@torch.no_grad()
def _greedy_unpadded(model, ids, steps=4):
    seq = ids.clone()
    for _ in range(steps):
        nxt = model(input_ids=seq, attention_mask=torch.ones_like(seq)).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    return seq
