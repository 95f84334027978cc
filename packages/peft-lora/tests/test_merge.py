"""Merging: merged == unmerged outputs, unmerge restores weights, safe_merge refuses NaN, unload."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from _lora_test_models import (
    conv_net,
    emb_mlp,
    images,
    input_ids,
    logits,
    randomize_lora,
    tiny_gpt2,
    tiny_llama,
)
from peft_core import get_peft_model
from peft_lora import LoraConfig, LoraLayer

CASES = {
    "llama": (tiny_llama, dict(target_modules=["q_proj", "v_proj", "down_proj"]), input_ids),
    "llama-dora-embed": (
        tiny_llama,
        dict(target_modules=["q_proj", "embed_tokens", "up_proj"], use_dora=True),
        input_ids,
    ),
    "gpt2": (tiny_gpt2, dict(target_modules=["c_attn", "c_proj"]), input_ids),
    "gpt2-dora": (tiny_gpt2, dict(target_modules=["c_attn", "c_fc"], use_dora=True), input_ids),
    "gpt2-lora-bias": (tiny_gpt2, dict(target_modules=["c_attn"], lora_bias=True), input_ids),
    "conv": (conv_net, dict(target_modules=["conv2d", "pointwise", "conv1d", "conv3d", "head"]), images),
    "conv-dora": (conv_net, dict(target_modules=["conv2d", "pointwise", "conv1d", "conv3d"], use_dora=True), images),
    "embedding": (emb_mlp, dict(target_modules=["emb", "lin0"], use_rslora=True), input_ids),
}


def _make(case, **extra):
    make_base, config, make_inputs = CASES[case]
    base = make_base()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, **config, **extra)).eval()
    randomize_lora(model)
    return base, model, make_inputs()


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.get_base_model().state_dict().items() if "lora_" not in k}


@pytest.mark.parametrize("case", list(CASES))
def test_merge_unmerge(case):
    base, model, inputs = _make(case)
    expected = logits(model, inputs)
    assert not torch.allclose(expected, logits(base, inputs))
    before = _weights(model)
    model.merge_adapter()
    assert all(layer.merged for layer in model.base_model.tuner_layers())
    torch.testing.assert_close(logits(model, inputs), expected, atol=2e-5, rtol=1e-5)
    model.unmerge_adapter()
    after = _weights(model)
    for key in before:
        torch.testing.assert_close(after[key], before[key], atol=2e-6, rtol=1e-6, msg=key)
    torch.testing.assert_close(logits(model, inputs), expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["llama", "gpt2-dora", "conv-dora", "llama-dora-embed", "gpt2-lora-bias"])
def test_merge_and_unload(case):
    base, model, inputs = _make(case)
    expected = logits(model, inputs)
    merged = model.merge_and_unload(progressbar=True)
    assert type(merged) is type(base)
    assert not any(isinstance(m, LoraLayer) for m in merged.modules())
    assert set(merged.state_dict()) == set(base.state_dict())
    torch.testing.assert_close(logits(merged, inputs), expected, atol=2e-5, rtol=1e-5)


def test_unload_gives_back_the_base_model():
    base, model, inputs = _make("llama")
    unloaded = model.unload()
    assert torch.equal(logits(unloaded, inputs), logits(base, inputs))


@pytest.mark.parametrize("case", ["llama", "gpt2-dora", "gpt2-lora-bias", "conv-dora"])
def test_safe_merge_refuses_non_finite_and_changes_nothing(case):
    base, model, inputs = _make(case)
    layer = next(model.base_model.tuner_layers())
    with torch.no_grad():
        (layer.lora_B["default"].weight if "default" in layer.lora_B else layer.lora_embedding_B["default"])[0] = float(
            "nan"
        )
    before = _weights(model)
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    for key, value in _weights(model).items():
        assert torch.equal(value, before[key]), key
    assert not layer.merged


def test_safe_merge_of_a_good_adapter_equals_merge():
    base, model, inputs = _make("gpt2-lora-bias")
    expected = logits(model, inputs)
    model.merge_adapter(safe_merge=True)
    torch.testing.assert_close(logits(model, inputs), expected, atol=2e-5, rtol=1e-5)


def test_disable_adapter_gives_base_outputs_even_when_merged():
    base, model, inputs = _make("gpt2-dora")
    expected = logits(model, inputs)
    with model.disable_adapter():
        assert torch.equal(logits(model, inputs), logits(base, inputs))
    model.merge_adapter()
    with model.disable_adapter():  # unmerges on the fly
        torch.testing.assert_close(logits(model, inputs), logits(base, inputs), atol=2e-6, rtol=1e-6)
    torch.testing.assert_close(logits(model, inputs), expected, atol=2e-5, rtol=1e-5)


def test_merging_several_adapters_and_dora_norms_use_the_unmerged_weight():
    base, model, inputs = _make("gpt2-dora")
    model.add_adapter("other", LoraConfig(r=2, target_modules=["c_attn"], use_dora=True))
    randomize_lora(model, seed=5)
    model.base_model.set_adapter(["default", "other"])
    expected = logits(model, inputs)
    model.merge_adapter(adapter_names=["default", "other"])
    torch.testing.assert_close(logits(model, inputs), expected, atol=3e-5, rtol=1e-5)
    model.unmerge_adapter()
    torch.testing.assert_close(logits(model, inputs), expected, atol=3e-5, rtol=1e-5)
    with model.disable_adapter():
        torch.testing.assert_close(logits(model, inputs), logits(base, inputs), atol=3e-6, rtol=1e-6)


def test_merge_twice_warns():
    _, model, _ = _make("llama")
    model.merge_adapter()
    with pytest.warns(UserWarning, match="already merged"):
        model.merge_adapter()
