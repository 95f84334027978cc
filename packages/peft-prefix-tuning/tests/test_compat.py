"""Compatibility with Hugging Face PEFT 0.21.2 beyond the kit's `hf_files` check (which round-trips the
Llama and T5 cases of `peft_prefix_tuning.conformance`): the same seed gives the same prefixes and
forward as HF's (BertModel too), HF's files reload to HF's own reloaded output, generation.

HF PEFT 0.21.2 can't prefix-tune BERT classifiers under transformers 5.x (it looks for a
`past_key_values` argument, now called `cache`), so HF comparisons use Llama, T5 and BertModel.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing.hf import config_differences, hf_peft_or_skip, twin_models
from peft_core.testing.tasks import assert_hf_file_reloads_alike, assert_saved_alike, batch, greedy_by_forward, run, task_model

from peft_core import PeftModel
from peft_prefix_tuning import PrefixTuningConfig

peft = hf_peft_or_skip()
pytestmark = pytest.mark.compat

CASES = [
    ("CAUSAL_LM", False),
    ("CAUSAL_LM", True),
    ("SEQ_2_SEQ_LM", False),
    ("SEQ_2_SEQ_LM", True),
    ("FEATURE_EXTRACTION", False),
]


def _twins(task, projection=False):
    kwargs = {"task_type": task, "num_virtual_tokens": 3, "prefix_projection": projection}
    return twin_models(lambda: task_model(task), PrefixTuningConfig(**kwargs), peft.PrefixTuningConfig(**kwargs))


def test_config_fields_match_hf():
    assert not config_differences(PrefixTuningConfig, peft.PrefixTuningConfig)


def test_gqa_fields_on_tiny_llama():
    _, ours = _twins("CAUSAL_LM")
    config = ours.peft_config["default"]
    assert (config.token_dim, config.num_attention_heads, config.num_layers, config.encoder_hidden_size) == (16, 2, 2, 16)
    assert tuple(ours.base_model.prompt_matrix().shape) == (3, 64)


@pytest.mark.parametrize("task,projection", CASES)
def test_same_seed_same_prefixes_forward_and_saved_values(task, projection, tmp_path):
    hf, ours = _twins(task, projection)
    a, b = run(hf, task), run(ours, task)
    if projection:  # HF runs the MLP on every row of the batch, we on one row: float rounding only
        assert torch.allclose(a, b, atol=1e-5)
    else:
        assert torch.equal(a, b)
    assert_saved_alike(hf, ours, tmp_path)


@pytest.mark.parametrize("task,projection", CASES)
def test_hf_file_gives_hf_reloaded_output_bit_for_bit(task, projection, tmp_path):
    assert_hf_file_reloads_alike(_twins(task, projection)[0], task, tmp_path)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_equals_greedy_decoding_of_hf_forward(task):
    # HF PEFT 0.21.2's own generate drops the prefix under transformers 5.x (it passes `past_key_values`
    # next to transformers' `cache`, which wins), so the reference is greedy decoding with HF's forward.
    hf, ours = _twins(task)
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
