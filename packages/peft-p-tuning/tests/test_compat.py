"""Compatibility with Hugging Face PEFT 0.21.2 beyond the kit's `hf_files` check (which round-trips
every case of `peft_p_tuning.conformance`): the same seed gives the same encoder and forward as HF's,
saved matrices agree in value, HF's files reload to HF's own reloaded output, generation.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing.hf import config_differences, hf_peft_or_skip, twin_models
from peft_core.testing.tasks import assert_hf_file_reloads_alike, assert_saved_alike, batch, greedy_by_forward, run, task_model

from peft_core import PeftModel
from peft_p_tuning import PromptEncoderConfig

peft = hf_peft_or_skip()
pytestmark = pytest.mark.compat

CASES = [("CAUSAL_LM", "MLP"), ("CAUSAL_LM", "LSTM"), ("SEQ_2_SEQ_LM", "MLP"), ("SEQ_2_SEQ_LM", "LSTM"), ("SEQ_CLS", "MLP")]


def _twins(task, kind="MLP"):
    kwargs = {"task_type": task, "num_virtual_tokens": 3, "encoder_reparameterization_type": kind, "encoder_hidden_size": 24}
    return twin_models(lambda: task_model(task), PromptEncoderConfig(**kwargs), peft.PromptEncoderConfig(**kwargs))


def test_config_fields_match_hf():
    assert not config_differences(PromptEncoderConfig, peft.PromptEncoderConfig)
    assert PromptEncoderConfig().peft_type == peft.PromptEncoderConfig().peft_type == "P_TUNING"


@pytest.mark.parametrize("task,kind", CASES)
def test_same_seed_same_encoder_forward_and_saved_values(task, kind, tmp_path):
    hf, ours = _twins(task, kind)
    # HF runs the encoder on one row and repeats it, as we do; LSTMs may still round differently
    assert torch.allclose(run(hf, task), run(ours, task), atol=1e-5)
    assert_saved_alike(hf, ours, tmp_path, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("task,kind", CASES)
def test_hf_file_gives_hf_reloaded_output_bit_for_bit(task, kind, tmp_path):
    assert_hf_file_reloads_alike(_twins(task, kind)[0], task, tmp_path)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_equals_greedy_decoding_of_hf_forward(task, tmp_path):
    hf, _ = _twins(task)
    hf.save_pretrained(tmp_path)  # compare loaded adapters: both then use the identical saved matrix
    hf = peft.PeftModel.from_pretrained(task_model(task), tmp_path)
    ours = PeftModel.from_pretrained(task_model(task), tmp_path)
    ids, mask = batch()
    got = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, greedy_by_forward(hf, task))
    if task == "SEQ_2_SEQ_LM":  # HF's generate is only right for encoder-decoder models under transformers 5.x
        assert torch.equal(hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False), got)
