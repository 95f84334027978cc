"""Several adapters (add / set / delete / disable / load), bias modes, modules_to_save, trainable flags."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from _lora_test_models import (
    emb_mlp,
    input_ids,
    logits,
    randomize_lora,
    tiny_gpt2,
    tiny_llama,
)
from peft_core import PeftModel, get_peft_model
from peft_lora import LoraConfig
from safetensors.torch import load_file


def _two_adapters():
    base = tiny_llama()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.add_adapter("second", LoraConfig(r=2, target_modules=["o_proj", "q_proj"]))
    randomize_lora(model)
    return base, model.eval()


def test_add_set_delete_and_disable():
    base, model = _two_adapters()
    ids = input_ids()
    assert model.active_adapter == "default"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".default." in n for n in trainable)  # the added adapter is not trainable
    out_default = logits(model, ids)
    model.set_adapter("second")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".second." in n for n in trainable)
    out_second = logits(model, ids)
    assert not torch.equal(out_default, out_second)
    with model.disable_adapter():
        assert torch.equal(logits(model, ids), logits(base, ids))
    model.base_model.set_adapter(["default", "second"])  # both active: deltas add up
    both = logits(model, ids)
    assert not torch.equal(both, out_default) and not torch.equal(both, out_second)

    model.delete_adapter("second")
    assert list(model.peft_config) == ["default"] and model.active_adapter == "default"
    assert not any(".second." in n for n, _ in model.named_parameters())
    assert torch.equal(logits(model, ids), out_default)
    with pytest.raises(ValueError, match="does not exist"):
        model.set_adapter("second")


def test_multiple_active_adapters_add_their_deltas():
    base = emb_mlp()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["lin0"], init_lora_weights=False))
    model.add_adapter("b", LoraConfig(r=3, lora_alpha=3, target_modules=["lin0"], init_lora_weights=False))
    layer = model.base_model.model.lin0
    model.base_model.set_adapter(["default", "b"])
    x = torch.randn(2, 16)
    expected = base.lin0(x)
    for name in ("default", "b"):
        a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
        expected = expected + layer.scaling[name] * (x @ a.T @ b.T)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)


def test_save_load_several_adapters(tmp_path):
    base, model = _two_adapters()
    ids = input_ids()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "second" / "adapter_model.safetensors").is_file()
    model.set_adapter("second")
    expected_second = logits(model, ids)
    model.set_adapter("default")
    expected_default = logits(model, ids)

    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    loaded.load_adapter(tmp_path, "second", subfolder="second")
    assert loaded.active_adapter == "default"
    assert torch.equal(logits(loaded, ids), expected_default)
    loaded.set_adapter("second")
    assert torch.equal(logits(loaded, ids), expected_second)
    assert not any(p.requires_grad for p in loaded.parameters())

    trainable = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, is_trainable=True)
    assert {n for n, p in trainable.named_parameters() if p.requires_grad} == {
        n for n, _ in trainable.named_parameters() if ".lora_" in n
    }


def test_modules_to_save_is_trained_saved_and_loaded(tmp_path):
    base = tiny_llama()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["lm_head"]))
    randomize_lora(model)
    assert model.base_model.model.lm_head.modules_to_save["default"].weight.requires_grad
    model.save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "adapter_model.safetensors"))
    assert "base_model.model.lm_head.weight" in keys
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert torch.equal(logits(loaded, input_ids()), logits(model, input_ids()))


@pytest.mark.parametrize("mode", ["all", "lora_only"])
def test_bias_modes_train_and_save_the_right_biases(tmp_path, mode):
    base = tiny_gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["c_attn"], bias=mode))
    trainable_biases = {n for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")}
    all_biases = {n for n, _ in model.named_parameters() if n.endswith(".bias") and ".lora_" not in n}
    targeted = {n for n in all_biases if "c_attn.base_layer" in n}
    assert trainable_biases == (all_biases if mode == "all" else targeted)
    assert len(targeted) == 2

    randomize_lora(model, biases=mode)
    model.save_pretrained(tmp_path)
    saved = {k for k in load_file(tmp_path / "adapter_model.safetensors") if ".lora_" not in k}
    assert saved == {f"base_model.model.{n.removeprefix('base_model.model.')}" for n in trainable_biases}
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert torch.equal(logits(loaded, input_ids()), logits(model, input_ids()))


def test_only_one_adapter_may_train_biases():
    model = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], bias="all"))
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("other", LoraConfig(r=2, target_modules=["v_proj"], bias="lora_only"))
    assert list(model.peft_config) == ["default"]
    assert not any(".other." in n for n, _ in model.named_parameters())


def test_inference_load_freezes_everything(tmp_path):
    base, model = _two_adapters()
    model.save_pretrained(tmp_path, selected_adapters=["default"])
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert loaded.peft_config["default"].inference_mode is True


def test_set_scale_rescales_the_delta():
    base = emb_mlp()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["lin0"], init_lora_weights=False))
    x = torch.randn(2, 16)
    layer = model.base_model.model.lin0
    with torch.no_grad():
        delta = layer(x) - base.lin0(x)
        model.base_model.set_scale("default", 0.5)
        torch.testing.assert_close(layer(x) - base.lin0(x), delta * 0.5)


@pytest.mark.parametrize("name", ["copy", "get", "setdefault"])
def test_adapter_names_that_collide_with_parameterdict_are_refused(name):
    model = get_peft_model(emb_mlp(), LoraConfig(r=2, target_modules=["emb"]))
    with pytest.raises(ValueError, match="collides"):
        model.add_adapter(name, LoraConfig(r=2, target_modules=["emb"]))
    assert list(model.peft_config) == ["default"]
