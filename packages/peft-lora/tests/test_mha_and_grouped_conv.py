"""LoRA on `nn.MultiheadAttention`, DoRA on grouped convolutions, and `runtime_config`.

MultiheadAttention: Hugging Face PEFT 0.21.2's keys and shapes both ways; outputs bit-identical to
HF when out_proj's update is zero (HF 0.21.2 adds out_proj's update twice, huggingface/peft#3774),
and equal to a hand-built reference (both projections' weights replaced by W + ΔW) otherwise.
Grouped convolutions with DoRA: bit-identical outputs with HF in both directions.
"""

from __future__ import annotations

import copy

import peft_core
import pytest
import torch
from _hf_compat import config_json, hf_peft, load_in_hf, roundtrip, tensors
from _lora_test_models import randomize_lora
from peft_core.errors import ConfigError
from peft_lora import LoraConfig, LoraRuntimeConfig, MultiheadAttention
from torch import nn

X = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))


class AttnNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.mha(x, x, x)[0])


def _run(model):
    with torch.no_grad():
        return model.eval()(X)


def _zero_out_proj_update(model, seed):
    randomize_lora(model, seed=seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "out_proj" in name and ("lora_B" in name or "out_proj_B" in name):  # HF and our names
                param.zero_()


@pytest.mark.compat
def test_mha_files_and_in_proj_outputs_match_hf(tmp_path):
    roundtrip(tmp_path, AttnNet, _run, dict(r=2, target_modules=["mha"]), randomize=_zero_out_proj_update)
    assert set(tensors(tmp_path / "ours")) == {
        "base_model.model.mha.lora_A.weight",
        "base_model.model.mha.lora_B.weight",
        "base_model.model.mha.base_layer.out_proj.lora_A.weight",
        "base_model.model.mha.base_layer.out_proj.lora_B.weight",
    }


def _reference(model, base):
    """The attention with in_proj and out_proj weights replaced by W + ΔW, computed by hand."""
    layer = model.base_model.model.mha
    ref = copy.deepcopy(base)
    with torch.no_grad():
        ref.mha.in_proj_weight += layer.get_delta_weight("default")
        ref.mha.out_proj.weight += layer.out_proj_delta_weight("default")
    return ref


def test_mha_forward_train_merge_equal_the_reference(tmp_path):
    base = AttnNet()
    model = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4, target_modules=["mha"]))
    assert isinstance(model.base_model.model.mha, MultiheadAttention)
    assert torch.equal(_run(model), _run(base))  # B = 0: a no-op start
    randomize_lora(model, seed=1)
    expected = _run(_reference(model, base))
    torch.testing.assert_close(_run(model), expected, atol=1e-6, rtol=1e-6)
    model.save_pretrained(tmp_path)
    loaded = peft_core.PeftModel.from_pretrained(AttnNet(), tmp_path)
    assert torch.equal(_run(loaded), _run(model))
    theirs = load_in_hf(AttnNet(), tmp_path)  # loads; its output differs by HF's doubled out_proj update
    assert not torch.allclose(_run(theirs), expected, atol=1e-4)
    model.train()
    out = model(X).sum()
    out.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {n for n, p in model.named_parameters() if p.requires_grad} and len(grads) == 4 + 2 - 2
    merged = copy.deepcopy(model).merge_and_unload()
    assert type(merged.mha) is nn.MultiheadAttention
    torch.testing.assert_close(_run(merged), expected, atol=1e-5, rtol=1e-5)
    with model.disable_adapter():
        assert torch.equal(_run(model), _run(base))
    model.merge_adapter()
    model.unmerge_adapter()
    torch.testing.assert_close(_run(model), expected, atol=1e-6, rtol=1e-6)


def test_mha_refusals():
    with pytest.raises(ConfigError, match="DoRA"):
        peft_core.get_peft_model(AttnNet(), LoraConfig(target_modules=["mha"], use_dora=True))
    net = AttnNet()
    net.mha = nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True)
    with pytest.raises(ConfigError, match="same size"):
        peft_core.get_peft_model(net, LoraConfig(target_modules=["mha"]))
    model = peft_core.get_peft_model(AttnNet(), LoraConfig(target_modules=["mha"]))
    model.add_adapter("b", LoraConfig(target_modules=["mha"]))
    with pytest.raises(ValueError, match="mixed-adapter batch"):
        model.eval()(X, adapter_names=["default", "b"])


class GroupedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.head = nn.Linear(6 * 5 * 5, 3)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


IMAGES = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(1))


@pytest.mark.compat
@pytest.mark.parametrize("dora", [False, True])
def test_grouped_conv_lora_and_dora_match_hf(tmp_path, dora):
    run = lambda m: m.eval()(IMAGES).detach()  # noqa: E731
    roundtrip(tmp_path, GroupedConv, run, dict(r=4, target_modules=["conv"], use_dora=dora))
    model = peft_core.get_peft_model(GroupedConv(), LoraConfig(r=4, target_modules=["conv"], use_dora=dora))
    with pytest.raises(NotImplementedError, match="groups > 1"):
        model.merge_adapter()


def test_runtime_config_is_accepted_not_saved_and_changes_nothing(tmp_path):
    hf_peft()
    base = AttnNet()
    config = dict(r=2, target_modules=["head"], use_dora=True)
    plain = peft_core.get_peft_model(copy.deepcopy(base), LoraConfig(**config))
    offload = peft_core.get_peft_model(
        copy.deepcopy(base), LoraConfig(runtime_config=LoraRuntimeConfig(ephemeral_gpu_offload=True), **config)
    )
    assert torch.equal(_run(plain), _run(offload))
    offload.save_pretrained(tmp_path)
    assert "runtime_config" not in config_json(tmp_path)
    assert LoraConfig.from_dict({"peft_type": "LORA", "runtime_config": {"ephemeral_gpu_offload": True}}).runtime_config.ephemeral_gpu_offload
