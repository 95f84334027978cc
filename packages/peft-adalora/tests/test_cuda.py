"""AdaLoRA on a CUDA device (skipped without one): forward, mixed batches, merge, training vs HF, bf16, files."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import _adalora_helpers as helpers

import peft_core
from peft_adalora import AdaLoraConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


@pytest.mark.parametrize(
    "make, targets, make_inputs",
    [
        (helpers.tiny_llama, ["q_proj", "v_proj", "down_proj"], helpers.input_ids),
        (helpers.tiny_gpt2, ["c_attn", "c_fc"], helpers.input_ids),
        (helpers.conv_net, ["conv2d", "pointwise", "head"], helpers.images),
    ],
)
def test_cuda_forward_mixed_batch_and_merge_match_cpu(make, targets, make_inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft_core.get_peft_model(make(), AdaLoraConfig(total_step=10, init_r=4, target_modules=targets))
        model.add_adapter("b", AdaLoraConfig(total_step=10, init_r=2, target_modules=targets, inference_mode=True))
    helpers.randomize_adalora(model)
    model.eval()
    inputs = make_inputs()
    names = ["b", "default", "__base__", "b"]
    expected = helpers.logits(model, inputs)
    expected_mixed = helpers.logits(model, inputs, adapter_names=names)
    model.to(CUDA)
    assert all(p.device.type == "cuda" for p in model.parameters())
    torch.testing.assert_close(helpers.logits(model, inputs.to(CUDA)).cpu(), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(helpers.logits(model, inputs.to(CUDA), adapter_names=names).cpu(), expected_mixed, atol=1e-4, rtol=1e-4)
    model.merge_adapter(safe_merge=True)
    torch.testing.assert_close(helpers.logits(model, inputs.to(CUDA)).cpu(), expected, atol=1e-4, rtol=1e-4)


def test_cuda_training_matches_hf_and_files_load_on_cpu(tmp_path):
    peft = pytest.importorskip("peft")
    targets = ["q_proj", "v_proj"]
    ours, kept_ours = helpers.train_schedule(peft_core, AdaLoraConfig, helpers.tiny_llama(), device="cuda", target_modules=targets)
    hf, kept_hf = helpers.train_schedule(
        peft, peft.AdaLoraConfig, helpers.tiny_llama(), device="cuda", freeze_ranknum=True, target_modules=targets
    )
    assert kept_ours == kept_hf and kept_ours[-1] == 2 * 4
    assert all(p.device.type == "cuda" for n, p in ours.named_parameters() if ".lora_" in n or ".ranknum." in n)
    hf_pattern = {k.removesuffix(".default"): v for k, v in hf.peft_config["default"].rank_pattern.items()}
    assert ours.peft_config["default"].rank_pattern == hf_pattern
    hf_state = hf.state_dict()
    for key, value in ours.state_dict().items():
        if ".lora_" in key or ".ranknum." in key:
            assert torch.equal(value, hf_state[key]), key
    ours.save_pretrained(tmp_path / "ours")
    ids = helpers.input_ids()
    on_gpu = helpers.logits(ours, ids.to(CUDA)).cpu()
    here = helpers.logits(peft_core.PeftModel.from_pretrained(helpers.tiny_llama(), tmp_path / "ours"), ids)
    there = helpers.logits(peft.PeftModel.from_pretrained(helpers.tiny_llama(), tmp_path / "ours").eval(), ids)
    assert torch.equal(here, there)
    torch.testing.assert_close(here, on_gpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("autocast", [True, False])
def test_bf16_base_matches_hf(autocast):
    peft = pytest.importorskip("peft")
    base = helpers.tiny_llama().to(CUDA, torch.bfloat16)
    config = dict(total_step=10, init_r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    models = {}
    for lib, cls in ((peft_core, AdaLoraConfig), (peft, peft.AdaLoraConfig)):
        models[lib.__name__] = lib.get_peft_model(copy.deepcopy(base), cls(**config), autocast_adapter_dtype=autocast)
        helpers.randomize_adalora(models[lib.__name__], seed=4)
    ids = helpers.input_ids().to(CUDA)
    ours, hf = (helpers.logits(m.eval(), ids) for m in models.values())
    layer = models["peft_core"].base_model.model.model.layers[0].self_attn.q_proj
    assert layer.lora_A["default"].dtype == (torch.float32 if autocast else torch.bfloat16)
    assert layer.ranknum["default"].dtype == (torch.float32 if autocast else torch.bfloat16)
    assert torch.equal(ours, hf)


def test_ranknum_stays_fixed_where_hf_trains_it():
    """HF PEFT 0.21.2 re-wraps `ranknum` as a trainable Parameter when moving it to CUDA; ours stays frozen."""
    peft = pytest.importorskip("peft")
    config = dict(total_step=10, init_r=4, target_modules=["q_proj"])
    ours = peft_core.get_peft_model(helpers.tiny_llama().to(CUDA), AdaLoraConfig(**config))
    hf = peft.get_peft_model(helpers.tiny_llama().to(CUDA), peft.AdaLoraConfig(**config))
    assert not any(p.requires_grad for n, p in ours.named_parameters() if ".ranknum." in n)
    assert any(p.requires_grad for n, p in hf.named_parameters() if ".ranknum." in n)  # HF's quirk, documented
