"""Both-direction compatibility with Hugging Face PEFT 0.21.2 (imported only here)."""

from __future__ import annotations

import warnings

import pytest
import torch
from peft_core.testing.hf import config_differences, hf_peft, hf_peft_status, read_adapter_config
from peft_core.testing.tasks import batch, greedy_by_forward, run, task_model
from safetensors.torch import load_file

from peft_core import PeftModel, get_peft_model
from peft_prompt_tuning import PromptTuningConfig

peft = hf_peft()
if peft is None:  # absent, or `import peft` is not Hugging Face's distribution
    pytest.skip(hf_peft_status(), allow_module_level=True)
pytestmark = pytest.mark.compat

TASKS = ["CAUSAL_LM", "SEQ_2_SEQ_LM", "SEQ_CLS"]


def _pair(task, **kwargs):
    """The same adapter made by HF and by us (same seed, so the same random virtual tokens)."""
    torch.manual_seed(1)
    hf = peft.get_peft_model(task_model(task), peft.PromptTuningConfig(task_type=task, num_virtual_tokens=3, **kwargs))
    torch.manual_seed(1)
    ours = get_peft_model(task_model(task), PromptTuningConfig(task_type=task, num_virtual_tokens=3, **kwargs))
    if task == "SEQ_CLS":  # the freshly made heads differ in RNG use; give both the same trained head
        with torch.no_grad():
            torch.manual_seed(2)
            weight = torch.randn_like(ours.base_model.model.classifier.modules_to_save["default"].weight)
            hf.base_model.classifier.modules_to_save["default"].weight.copy_(weight)
            ours.base_model.model.classifier.modules_to_save["default"].weight.copy_(weight)
    return hf.eval(), ours.eval()


def test_config_fields_match_hf():
    assert not config_differences(PromptTuningConfig, peft.PromptTuningConfig)


@pytest.mark.parametrize("task", TASKS)
def test_same_forward_config_and_file_as_hf(task, tmp_path):
    hf, ours = _pair(task)
    assert torch.equal(run(hf, task), run(ours, task))
    hf.save_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    assert read_adapter_config(tmp_path / "ours") == read_adapter_config(tmp_path / "hf")
    a = load_file(tmp_path / "hf" / "adapter_model.safetensors")
    b = load_file(tmp_path / "ours" / "adapter_model.safetensors")
    assert {k: (v.shape, v.dtype) for k, v in a.items()} == {k: (v.shape, v.dtype) for k, v in b.items()}
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("task", TASKS)
def test_hf_adapter_loads_here(task, tmp_path):
    hf, _ = _pair(task, prompt_tuning_init="SAMPLE_VOCAB")
    expected = run(hf, task)
    hf.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(task_model(task), tmp_path)
    assert torch.equal(run(loaded, task), expected)
    assert torch.equal(run(peft.PeftModel.from_pretrained(task_model(task), tmp_path), task), expected)


@pytest.mark.parametrize("task", TASKS)
def test_our_adapter_loads_in_hf(task, tmp_path):
    _, ours = _pair(task)
    with torch.no_grad():
        ours.base_model.prompt_encoder["default"].embedding.weight.mul_(3)
    expected = run(ours, task)
    ours.save_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = peft.PeftModel.from_pretrained(task_model(task), tmp_path)
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    assert torch.equal(run(loaded, task), expected)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_equals_greedy_decoding_of_hf_forward(task):
    hf, ours = _pair(task)
    expected = greedy_by_forward(hf, task)
    ids, mask = batch()
    got = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, expected)
    if task == "SEQ_2_SEQ_LM":
        # HF's own generate is right for encoder-decoder models; for decoder-only models PEFT 0.21.2 under
        # transformers 5.x re-inserts the virtual tokens at every step (it looks for `past_key_values`,
        # which transformers now calls `cache`), so only its forward pass is a valid reference there.
        assert torch.equal(hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False), got)
