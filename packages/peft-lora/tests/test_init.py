"""init_lora_weights variants: gaussian, False, PiSSA, OLoRA, orthogonal, MiCA."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from _lora_test_models import emb_mlp, input_ids, logits, tiny_gpt2, tiny_llama
from peft_core import PeftModel, get_peft_model
from peft_lora import LoraConfig


def _q(model):
    return model.base_model.model.model.layers[0].self_attn.q_proj


def test_gaussian_and_random():
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights="gaussian"))
    a, b = _q(model).lora_A["default"].weight, _q(model).lora_B["default"].weight
    assert torch.count_nonzero(b) == 0 and 0.15 < a.std().item() < 0.35  # N(0, 1/r) with r = 4
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    assert torch.count_nonzero(_q(model).lora_B["default"].weight) > 0


@pytest.mark.parametrize("init", ["pissa", "pissa_niter_4", "olora"])
@pytest.mark.parametrize(
    "make, targets", [(tiny_llama, ["q_proj", "v_proj", "down_proj"]), (tiny_gpt2, ["c_attn", "c_fc"])]
)
def test_pissa_and_olora_change_the_base_but_not_the_outputs(make, targets, init):
    base = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(
            copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=init)
        )
    ids = input_ids()
    torch.testing.assert_close(logits(model, ids), logits(base, ids), atol=2e-5, rtol=1e-4)
    layer = next(model.base_model.tuner_layers())
    original = dict(base.named_parameters())[_name(model, layer) + ".weight"]
    assert not torch.allclose(layer.get_base_layer().weight, original)  # the base now holds the residual
    torch.testing.assert_close(
        layer.get_base_layer().weight + layer.get_delta_weight("default"), original, atol=2e-5, rtol=1e-4
    )
    with model.disable_adapter():  # the residual alone is a different model
        assert not torch.allclose(logits(model, ids), logits(base, ids), atol=1e-3)
    if init == "pissa":  # A and B hold the top singular directions: B@A·s is the best rank-r approximation
        w = original.T if layer.fan_in_fan_out else original
        s = torch.linalg.svdvals(w)
        delta = layer.get_delta_weight("default")
        torch.testing.assert_close(torch.linalg.norm(delta), torch.linalg.norm(s[:4]), atol=1e-4, rtol=1e-4)


def _name(model, layer) -> str:
    return next(n for n, m in model.base_model.model.named_modules() if m is layer)


def test_pissa_adapter_reloads_onto_the_original_base(tmp_path):
    """As in HF, loading re-runs PiSSA on the fresh base (deterministic SVD), then loads the trained factors."""
    base = tiny_llama()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights="pissa"))
    with torch.no_grad():
        _q(model).lora_B["default"].weight.add_(0.05)  # "training"
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    torch.testing.assert_close(logits(loaded, input_ids()), logits(model, input_ids()), atol=1e-6, rtol=1e-6)


def test_orthogonal():
    base = tiny_llama()
    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights="orthogonal")
    )
    a, b = _q(model).lora_A["default"].weight, _q(model).lora_B["default"].weight
    assert torch.count_nonzero(a) > 0 and torch.count_nonzero(b) > 0
    # A and B are built from the odd and even rows of one orthogonal matrix, so B@A = 0: a no-op start
    torch.testing.assert_close(b @ a, torch.zeros(32, 32), atol=1e-6, rtol=0)
    torch.testing.assert_close(logits(model, input_ids()), logits(base, input_ids()), atol=1e-6, rtol=1e-6)
    assert torch.equal(_q(model).get_base_layer().weight, base.model.layers[0].self_attn.q_proj.weight)
    with pytest.raises(ValueError, match="rank to be even"):
        get_peft_model(tiny_llama(), LoraConfig(r=3, target_modules=["q_proj"], init_lora_weights="orthogonal"))


def test_mica_freezes_b_and_starts_as_no_op():
    base = emb_mlp()
    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=2, target_modules=["lin0", "emb"], init_lora_weights="mica")
    )
    assert torch.equal(logits(model, input_ids()), logits(base, input_ids()))
    lin = model.base_model.model.lin0
    assert torch.count_nonzero(lin.lora_A["default"].weight) == 0
    assert not lin.lora_B["default"].weight.requires_grad and lin.lora_A["default"].weight.requires_grad
    assert not model.base_model.model.emb.lora_embedding_B["default"].requires_grad
    # B spans the weight's minor left singular directions
    u = torch.linalg.svd(base.lin0.weight, full_matrices=False)[0][:, -2:]
    torch.testing.assert_close((u.T @ lin.lora_B["default"].weight).abs(), torch.eye(2), atol=1e-4, rtol=0)
    model.set_adapter("default")
    assert not lin.lora_B["default"].weight.requires_grad
