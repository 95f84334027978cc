"""File compatibility with Hugging Face PEFT 0.21.2, in both directions, for AdaLoRA.

What the conformance kit's Hugging Face check (test_conformance.py) leaves out: a second adapter in
inference mode, default targets, `bias="all"`; and an adapter trained and pruned through a whole
20-step schedule in each library (same seed and data: the runs are bit-identical). Files written by
one library load in the other with identical outputs; the same config writes the same keys, shapes,
dtypes and config JSON.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import _adalora_helpers as helpers

import peft_adalora
import peft_core
from peft_core.testing.hf import load_in_hf as _load_in_hf
from peft_core.testing.hf import read_adapter_config as _config_json
from peft_core.testing.hf import round_trip_adapters
from peft_core.testing.hf import saved_tensor_specs as _tensors

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.compat

def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fan_in_fan_out flips warn on both sides
        return fn(*args, **kwargs)


def roundtrip(tmp_path, make_base, inputs, second=None, **config):
    """HF -> us and us -> HF for one config; `second` = (name, kwargs) adds an inference-mode second adapter."""
    adapters = {"default": dict(total_step=20, **config)}
    if second:
        adapters[second[0]] = dict(total_step=20, inference_mode=True, **second[1])
    result = round_trip_adapters(
        make_base,
        {name: peft.AdaLoraConfig(**kwargs) for name, kwargs in adapters.items()},
        {name: peft_adalora.AdaLoraConfig(**kwargs) for name, kwargs in adapters.items()},
        lambda model: helpers.logits(model.eval(), inputs),
        tmp_path,
        lambda model, seed: helpers.randomize_adalora(model, seed=seed),
    )
    return result.hf_dir, result.our_dir


def test_llama_q_v_causal_lm(tmp_path):
    _, our_dir = roundtrip(
        tmp_path, helpers.tiny_llama, helpers.input_ids(), init_r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
        task_type="CAUSAL_LM", second=("other", dict(init_r=3, target_modules=["o_proj"])),
    )
    keys = _tensors(our_dir)
    assert keys["base_model.model.model.layers.0.self_attn.v_proj.lora_A"] == ((4, 32), torch.float32)
    assert keys["base_model.model.model.layers.0.self_attn.v_proj.lora_E"] == ((4, 1), torch.float32)
    assert keys["base_model.model.model.layers.0.self_attn.v_proj.lora_B"] == ((16, 4), torch.float32)
    assert len(keys) == 12
    config = _config_json(our_dir)
    assert config["peft_type"] == "ADALORA" and config["rank_pattern"] is None and config["total_step"] == 20


def test_llama_default_targets_without_task_type(tmp_path):
    _, our_dir = roundtrip(tmp_path, helpers.tiny_llama, helpers.input_ids(), init_r=2, modules_to_save=["lm_head"])
    assert "base_model.model.lm_head.weight" in _tensors(our_dir)
    config = _config_json(our_dir)
    assert config["target_modules"] == {"q_proj", "v_proj"}
    assert config["auto_mapping"]["base_model_class"] == "LlamaForCausalLM"


@pytest.mark.parametrize("bias", ["all"])  # "lora_only": a conformance case
def test_gpt2_conv1d_with_bias_modes(tmp_path, bias):
    _, our_dir = roundtrip(
        tmp_path, helpers.tiny_gpt2, helpers.input_ids(), init_r=3, lora_alpha=4, target_modules=["c_attn", "mlp.c_proj"],
        bias=bias, lora_dropout=0.1,
    )
    config = _config_json(our_dir)
    assert config["fan_in_fan_out"] is True
    keys = _tensors(our_dir)
    assert "base_model.model.transformer.h.0.attn.c_attn.base_layer.bias" in keys
    assert ("base_model.model.transformer.h.0.ln_1.bias" in keys) == (bias == "all")


# -- trained and pruned ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_hf():
    return helpers.train_schedule(peft, peft.AdaLoraConfig, helpers.tiny_llama(), target_modules=["q_proj", "v_proj"])


def test_training_is_identical_to_hf(trained_ours, trained_hf):
    (ours, kept_ours), (hf, kept_hf) = trained_ours, trained_hf
    assert kept_ours == kept_hf
    hf_pattern = {k.removesuffix(".default"): v for k, v in hf.peft_config["default"].rank_pattern.items()}
    assert ours.peft_config["default"].rank_pattern == hf_pattern
    ours_state = {k: v for k, v in ours.state_dict().items() if ".lora_" in k or ".ranknum." in k}
    hf_state = {k: v for k, v in hf.state_dict().items() if ".lora_" in k or ".ranknum." in k}
    assert ours_state.keys() == hf_state.keys()
    for key, value in ours_state.items():
        assert torch.equal(value, hf_state[key]), key


@pytest.mark.filterwarnings("ignore:Adapter .default.. 4 LoRA tensor:UserWarning")
def test_pruned_adapters_load_in_both_libraries(trained_ours, trained_hf, tmp_path):
    (ours, _), (hf, _) = trained_ours, trained_hf
    ours.save_pretrained(tmp_path / "ours")
    hf.save_pretrained(tmp_path / "hf")
    assert _config_json(tmp_path / "ours") == _config_json(tmp_path / "hf")
    assert _tensors(tmp_path / "ours") == _tensors(tmp_path / "hf")
    shapes = _tensors(tmp_path / "ours")
    total = sum(shape[0] for key, (shape, _) in shapes.items() if key.endswith(".lora_E"))
    assert total == 2 * 4  # target_r x adapted matrices

    ids = helpers.input_ids()
    outputs = {
        "ours<-ours": helpers.logits(peft_core.PeftModel.from_pretrained(helpers.tiny_llama(), tmp_path / "ours"), ids),
        "ours<-hf": helpers.logits(peft_core.PeftModel.from_pretrained(helpers.tiny_llama(), tmp_path / "hf"), ids),
        "hf<-ours": helpers.logits(_load_in_hf(helpers.tiny_llama(), tmp_path / "ours"), ids),
        "hf<-hf": helpers.logits(_load_in_hf(helpers.tiny_llama(), tmp_path / "hf"), ids),
    }
    reference = outputs["hf<-hf"]
    for name, value in outputs.items():
        assert torch.equal(value, reference), name
    assert not torch.allclose(reference, helpers.logits(helpers.tiny_llama(), ids))
    torch.testing.assert_close(reference, helpers.logits(ours, ids), atol=1e-6, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("alpha", [6, 0])
def test_rank_pattern_set_by_hand_cuts_and_loads_alike(tmp_path, alpha):
    masks = {
        "model.layers.0.self_attn.q_proj.lora_E": [True, False, True, True],
        "model.layers.1.self_attn.q_proj.lora_E": [False, False, True, False],
        "model.layers.0.self_attn.v_proj.lora_E": [False] * 4,
    }
    config = dict(total_step=20, init_r=4, lora_alpha=alpha, target_modules=["q_proj", "v_proj"])
    ids = helpers.input_ids()
    outputs = {}
    for lib, cfg_cls in ((peft, peft.AdaLoraConfig), (peft_core, peft_adalora.AdaLoraConfig)):
        model = _quiet(lib.get_peft_model, helpers.tiny_llama(), cfg_cls(**config))
        helpers.randomize_adalora(model, seed=3)
        # HF's in-memory form has the adapter name in the keys; both libraries save it without
        model.peft_config["default"].rank_pattern = {f"{k}.default": v for k, v in masks.items()}
        directory = tmp_path / lib.__name__
        model.save_pretrained(directory)
        assert _config_json(directory)["rank_pattern"] == masks
        for loader in (peft_core.PeftModel.from_pretrained, _load_in_hf):
            outputs[(lib.__name__, loader.__module__)] = helpers.logits(loader(helpers.tiny_llama(), directory), ids)
    assert _tensors(tmp_path / "peft") == _tensors(tmp_path / "peft_core")
    reference = outputs[("peft", _load_in_hf.__module__)]  # HF's file loaded by HF
    for key, value in outputs.items():
        assert torch.equal(value, reference), key
