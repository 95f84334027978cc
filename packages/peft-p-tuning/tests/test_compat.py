"""Both-direction compatibility with Hugging Face PEFT 0.21.2 (imported only here)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from _p_tuning_support import MAKERS, batch, comparable_config, greedy_by_forward, read_config, read_weights, run

from peft_core import PeftModel, get_peft_model
from peft_p_tuning import PromptEncoderConfig

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.compat

CASES = [("CAUSAL_LM", "MLP"), ("CAUSAL_LM", "LSTM"), ("SEQ_2_SEQ_LM", "MLP"), ("SEQ_2_SEQ_LM", "LSTM"), ("SEQ_CLS", "MLP")]


def _pair(task, kind="MLP"):
    kwargs = {"task_type": task, "num_virtual_tokens": 3, "encoder_reparameterization_type": kind, "encoder_hidden_size": 24}
    torch.manual_seed(1)
    hf = peft.get_peft_model(MAKERS[task](), peft.PromptEncoderConfig(**kwargs))
    torch.manual_seed(1)
    ours = get_peft_model(MAKERS[task](), PromptEncoderConfig(**kwargs))
    if task == "SEQ_CLS":
        with torch.no_grad():
            torch.manual_seed(2)
            weight = torch.randn_like(ours.base_model.model.classifier.modules_to_save["default"].weight)
            hf.base_model.classifier.modules_to_save["default"].weight.copy_(weight)
            ours.base_model.model.classifier.modules_to_save["default"].weight.copy_(weight)
    return hf.eval(), ours.eval()


def test_config_fields_match_hf():
    ours = {f.name: f.default for f in dataclasses.fields(PromptEncoderConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(peft.PromptEncoderConfig)}
    assert set(ours) == set(theirs)
    assert all(ours[n] == theirs[n] for n in ours if n not in ("peft_type", "peft_version"))
    assert PromptEncoderConfig().peft_type == peft.PromptEncoderConfig().peft_type == "P_TUNING"


@pytest.mark.parametrize("task,kind", CASES)
def test_same_forward_config_and_file_as_hf(task, kind, tmp_path):
    hf, ours = _pair(task, kind)
    # HF runs the encoder on one row and repeats it, as we do; LSTMs may still round differently
    assert torch.allclose(run(hf, task), run(ours, task), atol=1e-5)
    hf.save_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    assert comparable_config(read_config(tmp_path / "ours")) == comparable_config(read_config(tmp_path / "hf"))
    wa, wb = read_weights(tmp_path / "hf"), read_weights(tmp_path / "ours")
    assert {k: (v.shape, v.dtype) for k, v in wa.items()} == {k: (v.shape, v.dtype) for k, v in wb.items()}
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


@pytest.mark.parametrize("task,kind", CASES)
def test_hf_adapter_loads_here(task, kind, tmp_path):
    hf, _ = _pair(task, kind)
    trained = run(hf, task)
    hf.save_pretrained(tmp_path)
    reloaded_in_hf = run(peft.PeftModel.from_pretrained(MAKERS[task](), tmp_path), task)
    got = run(PeftModel.from_pretrained(MAKERS[task](), tmp_path), task)
    assert torch.equal(got, reloaded_in_hf)
    # the file holds the encoder's output, the live model reruns its LSTM: float noise, which the
    # tiny random seq2seq model amplifies into logits of a few hundred (1e-4 apart on some CPUs)
    scale = trained.abs().max().item()
    torch.testing.assert_close(got, trained, atol=1e-5 * scale, rtol=1e-5)


@pytest.mark.parametrize("task,kind", CASES)
def test_our_adapter_loads_in_hf(task, kind, tmp_path):
    _, ours = _pair(task, kind)
    ours.save_pretrained(tmp_path)
    ours_reloaded = run(PeftModel.from_pretrained(MAKERS[task](), tmp_path), task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = peft.PeftModel.from_pretrained(MAKERS[task](), tmp_path)
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    assert torch.equal(run(loaded, task), ours_reloaded)
    assert torch.allclose(ours_reloaded, run(ours, task), atol=1e-4)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_equals_greedy_decoding_of_hf_forward(task, tmp_path):
    hf, _ = _pair(task)
    hf.save_pretrained(tmp_path)  # compare loaded adapters: both then use the identical saved matrix
    hf = peft.PeftModel.from_pretrained(MAKERS[task](), tmp_path)
    ours = PeftModel.from_pretrained(MAKERS[task](), tmp_path)
    ids, mask = batch()
    got = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, greedy_by_forward(hf, task))
    if task == "SEQ_2_SEQ_LM":  # HF's generate is only right for encoder-decoder models under transformers 5.x
        assert torch.equal(hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False), got)
