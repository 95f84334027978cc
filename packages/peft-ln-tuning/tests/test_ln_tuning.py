"""LN tuning's own behaviour: tuned copies, keys, merging by swapping modules (one adapter at a time),
disabling while merged, dtypes of the copies. The conformance kit (test_conformance.py) checks the
rest: merge/unmerge/unload outputs, several adapters, mixed batches, save/load, Hugging Face files."""

from __future__ import annotations

import copy
import dataclasses
import tempfile

import pytest
import torch
from torch import nn

from peft_core import PeftModel, get_peft_model
from peft_ln_tuning import TARGET_MODULES, LNTuningConfig, LNTuningLayer

LLAMA_NORMS = ("input_layernorm", "post_attention_layernorm")


def test_config_fields_and_defaults_match_hf():
    import peft

    ours = {f.name: f.default for f in dataclasses.fields(LNTuningConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(peft.LNTuningConfig)}
    assert set(ours) == set(theirs)
    for name in theirs:
        if name not in ("peft_type", "peft_version"):
            assert ours[name] == theirs[name], name
    assert LNTuningConfig().peft_type == "LN_TUNING"


def test_default_table_matches_hf():
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING as hf

    assert TARGET_MODULES == hf


def test_list_fields_keep_their_order():
    config = LNTuningConfig(target_modules=["norm", "input_layernorm"])
    assert config.to_dict()["target_modules"] == ["norm", "input_layernorm"]


def _tuned_copy_model(model: nn.Module) -> nn.Module:
    """The base model with every tuned copy put in place of its module (an independent reference)."""
    plain = copy.deepcopy(model.get_base_model())
    for name, module in list(plain.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LNTuningLayer):
                setattr(module, child_name, child.ln_tuning_layers[child.active_adapters[0]])
    return plain


def test_llama_defaults_keys_and_forward(tiny_llama, input_ids, randomize, saved_weights):
    base_out = tiny_llama(input_ids).logits
    model = get_peft_model(tiny_llama, LNTuningConfig(task_type="CAUSAL_LM"))
    assert model.peft_config["default"].target_modules == {"input_layernorm", "post_attention_layernorm", "norm"}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        *(f"base_model.model.model.layers.{i}.{n}.ln_tuning_layers.default.weight" for i in range(2) for n in LLAMA_NORMS),
        "base_model.model.model.norm.ln_tuning_layers.default.weight",
    }
    assert torch.equal(model(input_ids).logits, base_out)  # copies start equal to the originals
    randomize(model)
    original = model.base_model.model.model.norm.base_layer.weight.detach().clone()
    out = model(input_ids).logits
    assert not torch.allclose(out, base_out)
    assert torch.equal(out, _tuned_copy_model(model)(input_ids).logits)
    assert torch.equal(model.base_model.model.model.norm.base_layer.weight, original)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        weights = saved_weights(tmp)
    expected = {f"base_model.model.model.layers.{i}.{n}.ln_tuning_layers.weight" for i in range(2) for n in LLAMA_NORMS}
    expected.add("base_model.model.model.norm.ln_tuning_layers.weight")
    assert set(weights) == expected
    assert all(v == ((32,), torch.float32) for v in weights.values())


def test_gpt2_layernorms_with_bias(tiny_gpt2, saved_weights):
    model = get_peft_model(tiny_gpt2, LNTuningConfig(task_type="CAUSAL_LM"))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        weights = saved_weights(tmp)
    assert weights["base_model.model.transformer.h.0.ln_1.ln_tuning_layers.weight"] == ((32,), torch.float32)
    assert weights["base_model.model.transformer.h.0.ln_1.ln_tuning_layers.bias"] == ((32,), torch.float32)
    assert weights["base_model.model.transformer.ln_f.ln_tuning_layers.bias"] == ((32,), torch.float32)
    assert len(weights) == 2 * (2 * 2 + 1)


def test_exclude_and_regex_targets(tiny_llama):
    second = copy.deepcopy(tiny_llama)
    config = LNTuningConfig(target_modules=["input_layernorm"], exclude_modules=["layers.1.input_layernorm"])
    model = get_peft_model(tiny_llama, config)
    layers = model.base_model.model.model.layers
    assert isinstance(layers[0].input_layernorm, LNTuningLayer)
    assert not isinstance(layers[1].input_layernorm, LNTuningLayer)
    regex = get_peft_model(second, LNTuningConfig(target_modules=r"model\.layers\.\d+\.post_attention_layernorm"))
    assert sum(isinstance(m, LNTuningLayer) for m in regex.modules()) == 2


# -- merge / unload -----------------------------------------------------------------------------
def test_merge_unmerge_and_merge_and_unload(tiny_llama, input_ids, randomize):
    pristine = copy.deepcopy(tiny_llama)
    model = get_peft_model(tiny_llama, LNTuningConfig(task_type="CAUSAL_LM"))
    randomize(model)
    expected = model(input_ids).logits
    norm = model.base_model.model.model.norm
    original = norm.base_layer
    tuned = norm.ln_tuning_layers["default"]
    model.merge_adapter()
    assert norm.base_layer is tuned and norm.merged
    assert torch.equal(model(input_ids).logits, expected)
    model.unmerge_adapter()
    assert norm.base_layer is original and norm.ln_tuning_layers["default"] is tuned
    merged = model.merge_and_unload()
    assert not any(isinstance(m, LNTuningLayer) for m in merged.modules())
    assert not any("ln_tuning" in n or "base_layer" in n for n, _ in merged.named_modules())
    assert merged.model.norm is tuned and type(merged.model.norm) is type(pristine.model.norm)
    assert merged.state_dict().keys() == pristine.state_dict().keys()
    assert torch.equal(merged(input_ids).logits, expected)


def test_only_one_adapter_can_be_merged(mlp, randomize):
    model = get_peft_model(mlp, LNTuningConfig(target_modules=["norm0", "norm1"]))
    model.add_adapter("other", LNTuningConfig(target_modules=["norm1"]))
    randomize(model)
    with pytest.raises(ValueError, match="one adapter at a time"):
        model.merge_adapter(["default", "other"])
    assert not any(layer.merged for layer in model.base_model.tuner_layers())  # refused before any change
    x = torch.randn(3, 8)
    model.set_adapter("other")
    expected_other = model(x)
    model.merge_adapter(["default"])
    with pytest.warns(UserWarning, match="Unmerging first"):
        model.merge_adapter(["other"])
    # norm1 now holds "other"; norm0 (which "other" does not adapt) keeps "default" merged.
    assert model.base_model.model.norm1.merged_adapters == ["other"]
    assert model.base_model.model.norm0.merged_adapters == ["default"]
    model.unmerge_adapter()
    model.merge_adapter(["other"])
    assert torch.equal(model(x), expected_other)


def test_safe_merge_refuses_non_finite(mlp):
    model = get_peft_model(mlp, LNTuningConfig(target_modules=["norm0"]))
    layer = model.base_model.model.norm0
    with torch.no_grad():
        layer.ln_tuning_layers["default"].weight[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert not layer.merged


def test_saving_while_merged_saves_the_tuned_copy(mlp, randomize):
    pristine = copy.deepcopy(mlp)
    model = get_peft_model(mlp, LNTuningConfig(target_modules=["norm0", "norm1"]))
    randomize(model)
    x = torch.randn(3, 8)
    expected = model(x)
    model.merge_adapter()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        loaded = PeftModel.from_pretrained(pristine, tmp)
    assert torch.equal(loaded(x), expected)


def test_disable_adapter(mlp, randomize):
    x = torch.randn(3, 8)
    expected = mlp(x)
    model = get_peft_model(mlp, LNTuningConfig(target_modules=["norm0", "norm1"]))
    randomize(model)
    adapted = model(x)
    with model.disable_adapter():
        assert torch.equal(model(x), expected)
    model.merge_adapter()
    with model.disable_adapter():
        assert torch.equal(model(x), expected)
    assert torch.equal(model(x), adapted)


# -- several adapters ---------------------------------------------------------------------------
def test_two_active_adapters_are_refused_in_the_forward(mlp):
    model = get_peft_model(mlp, LNTuningConfig(target_modules=["norm0", "norm1"]))
    model.add_adapter("other", LNTuningConfig(target_modules=["norm1"]))
    model.set_adapter(["default", "other"])
    with pytest.raises(ValueError, match="one adapter at a time"):
        model(torch.randn(2, 8))


def test_half_precision_copies_keep_their_dtype(mlp):
    model = get_peft_model(mlp.to(torch.bfloat16), LNTuningConfig(target_modules=["norm0"]))
    assert model.base_model.model.norm0.ln_tuning_layers["default"].weight.dtype == torch.bfloat16
    assert model(torch.randn(2, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16
