"""KaSA (`kasa_config`) against Hugging Face PEFT 0.21.2 and against its definition.

Both ways on a tiny Llama: the same files (`lora_diag` next to A and B), bit-identical outputs, also
when loading with low_cpu_mem_usage; the base weight is truncated to its top `k - r` singular
components when the adapter is created; the update is `scaling · B diag A` (forward and merge agree);
the regularisation loss equals HF's `_get_kasa_loss`; what can't work is refused and adds nothing.
"""

from __future__ import annotations

import copy

import peft_core
import pytest
import torch
from _hf_compat import hf_peft, roundtrip
from _lora_test_models import input_ids, logits, randomize_lora, tiny_gpt2, tiny_llama
from peft_core.errors import ConfigError
from peft_lora import KasaConfig, LoraConfig

TARGETS = ["q_proj", "v_proj", "down_proj"]


def _run(model):
    return logits(model.eval(), input_ids())


@pytest.mark.compat
@pytest.mark.parametrize("kasa", [{}, {"beta": 0.01, "gamma": 0.5}], ids=["defaults", "custom"])
def test_kasa_matches_hf_both_ways(tmp_path, kasa):
    hf_model, ours = roundtrip(tmp_path, tiny_llama, _run, dict(r=4, target_modules=TARGETS, kasa_config=kasa))
    layer = ours.base_model.model.model.layers[0].self_attn.q_proj
    assert tuple(layer.lora_diag["default"].shape) == (4,) and layer.lora_diag["default"].requires_grad
    # the same trained values in both libraries give the same regularisation loss
    randomize_lora(hf_model, seed=5)
    randomize_lora(ours, seed=5)
    assert torch.equal(ours.base_model._get_kasa_loss(), hf_model.base_model._get_kasa_loss())
    loaded = peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path / "hf", low_cpu_mem_usage=True)
    theirs = hf_peft().PeftModel.from_pretrained(tiny_llama(), tmp_path / "hf")
    assert torch.equal(_run(loaded), _run(theirs))


def test_base_weight_truncated_update_is_b_diag_a_and_merge_agrees():
    base = tiny_llama()
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], kasa_config={}))
    assert torch.equal(_run(model), _run(model.get_base_model()))  # B = 0: a no-op on the truncated base
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    original = base.model.layers[0].self_attn.q_proj.weight
    u, s, vh = torch.linalg.svd(original, full_matrices=False)
    expected = (u[:, :-4] * s[:-4]) @ vh[:-4]
    torch.testing.assert_close(layer.get_base_layer().weight, expected, atol=1e-6, rtol=1e-5)
    assert torch.linalg.matrix_rank(layer.get_base_layer().weight).item() == min(original.shape) - 4

    randomize_lora(model, seed=3)
    a, b, diag = layer.lora_A["default"].weight, layer.lora_B["default"].weight, layer.lora_diag["default"]
    torch.testing.assert_close(layer.get_delta_weight("default"), 2.0 * (b @ torch.diag(diag) @ a))
    adapted = _run(model)
    with model.disable_adapter():  # KaSA's truncation stays (as in HF): the truncated base model
        truncated = _run(model)
    assert not torch.equal(adapted, truncated)
    before = layer.get_base_layer().weight.clone()
    model.merge_adapter()
    torch.testing.assert_close(_run(model), adapted, atol=1e-5, rtol=1e-4)
    model.unmerge_adapter()
    torch.testing.assert_close(layer.get_base_layer().weight, before, atol=1e-6, rtol=0)


def test_kasa_loss_trains_the_diagonal_and_is_zero_without_kasa():
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], kasa_config={}))
    loss = model.base_model._get_kasa_loss()
    loss.backward()
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.lora_diag["default"].grad is not None and layer.lora_diag["default"].grad.abs().sum() > 0
    assert model.base_model._get_kasa_loss("missing") == 0.0
    plain = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"]))
    assert plain.base_model._get_kasa_loss() == 0.0


@pytest.mark.parametrize(
    "make, config, match",
    [
        (tiny_gpt2, dict(target_modules=["c_attn"]), "fan_in_fan_out"),
        (tiny_llama, dict(target_modules=["embed_tokens"]), "linear layers only"),
        (tiny_llama, dict(target_modules=["q_proj", "down_proj"], rank_pattern={"down_proj": 32}), "smaller than min"),
        (tiny_llama, dict(target_modules=["q_proj"], use_dora=True), "can't be combined"),
    ],
    ids=["conv1d", "embedding", "rank-too-large", "dora"],
)
def test_what_cannot_work_is_refused(make, config, match):
    base = make()
    weights = copy.deepcopy(base.state_dict())
    with pytest.raises(ConfigError, match=match):
        peft_core.get_peft_model(base, LoraConfig(kasa_config={}, **{"r": 2, **config}))
    assert not [n for n, _ in base.named_modules() if "lora_" in n]
    # no base weight was truncated, not even those of targets adapted before the refused one (q_proj)
    assert all(torch.equal(v, weights[k]) for k, v in base.state_dict().items())


def test_kasa_and_plain_adapters_cannot_share_a_model():
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], kasa_config={}))
    with pytest.raises(ConfigError, match="can't share a model"):
        model.add_adapter("plain", LoraConfig(r=2, target_modules=["v_proj"]))
    assert "plain" not in model.peft_config
    model.add_adapter("second", LoraConfig(r=2, target_modules=["v_proj"], kasa_config={}))  # KaSA + KaSA is fine
    plain = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"]))
    weights = copy.deepcopy(plain.get_base_model().state_dict())
    with pytest.raises(ConfigError, match="can't share a model"):
        plain.add_adapter("kasa", LoraConfig(r=2, target_modules=["v_proj"], kasa_config={}))
    assert all(torch.equal(v, weights[k]) for k, v in plain.get_base_model().state_dict().items())


def test_weighted_combination_and_conversion_to_plain_lora_are_refused():
    from peft_lora import LoraConversionError, convert_to_lora

    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], kasa_config={}))
    with pytest.raises(ValueError, match="KaSA"):
        model.add_weighted_adapter(["default"], [1.0], "mix", combination_type="linear")
    assert "mix" not in model.peft_config
    with pytest.raises(LoraConversionError, match="KaSA"):
        convert_to_lora(model, 2)
