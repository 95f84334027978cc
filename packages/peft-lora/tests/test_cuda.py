"""LoRA on a CUDA device (skipped without one): placement, forward, mixed batches, merge, bf16, save/load."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from _lora_test_models import MIXED_BATCH_CASES, input_ids, logits, randomize_lora, tiny_llama
from peft_core import PeftModel, get_peft_model
from peft_lora import LoraConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _pair(make, **config):
    base = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(copy.deepcopy(base), LoraConfig(**config))
        model.add_adapter("b", LoraConfig(r=2, target_modules=config["target_modules"], use_dora=True))
    randomize_lora(model)
    return base, model.eval()


@pytest.mark.parametrize("make, targets, make_inputs", MIXED_BATCH_CASES)
def test_cuda_forward_mixed_batch_and_merge_match_cpu(make, targets, make_inputs):
    _, model = _pair(make, r=4, target_modules=targets)
    inputs = make_inputs(batch=4)
    names = ["b", "default", "__base__", "b"]
    expected = logits(model, inputs)
    expected_mixed = logits(model, inputs, adapter_names=names)
    model.to(CUDA)
    assert all(p.device.type == "cuda" for p in model.parameters())
    torch.testing.assert_close(logits(model, inputs.to(CUDA)).cpu(), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        logits(model, inputs.to(CUDA), adapter_names=names).cpu(), expected_mixed, atol=1e-4, rtol=1e-4
    )
    model.merge_adapter()
    torch.testing.assert_close(logits(model, inputs.to(CUDA)).cpu(), expected, atol=1e-4, rtol=1e-4)
    model.unmerge_adapter()
    model.merge_adapter(safe_merge=True)
    torch.testing.assert_close(logits(model, inputs.to(CUDA)).cpu(), expected, atol=1e-4, rtol=1e-4)


def test_new_adapters_follow_the_base_device_and_files_load_on_cpu(tmp_path):
    base = tiny_llama()
    model = get_peft_model(copy.deepcopy(base).to(CUDA), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.add_adapter("other", LoraConfig(r=2, target_modules=["o_proj"], use_dora=True))
    assert all(p.device.type == "cuda" for n, p in model.named_parameters() if "lora_" in n)
    randomize_lora(model)
    ids = input_ids()
    expected = logits(model, ids.to(CUDA)).cpu()
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    torch.testing.assert_close(logits(loaded, ids), expected, atol=1e-4, rtol=1e-4)
    loaded_cuda = PeftModel.from_pretrained(copy.deepcopy(base).to(CUDA), tmp_path, low_cpu_mem_usage=True)
    assert all(p.device.type == "cuda" for p in loaded_cuda.parameters())
    torch.testing.assert_close(logits(loaded_cuda, ids.to(CUDA)).cpu(), expected, atol=1e-4, rtol=1e-4)


def test_bf16_base_on_cuda_trains_fp32_adapters():
    base = tiny_llama().to(CUDA, torch.bfloat16)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True))
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "lora_" in n)
    model.train()
    ids = input_ids().to(CUDA)
    out = model(input_ids=ids, labels=ids)
    assert out.logits.dtype == torch.bfloat16
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        before = model(ids).logits
        model.merge_adapter()
        after = model(ids).logits
    torch.testing.assert_close(after, before, atol=0.1, rtol=0.05)  # bf16 weights
