"""File compatibility with Hugging Face PEFT 0.21.2's HRA, in both directions (bit-identical outputs)."""

from __future__ import annotations

import copy

import pytest
import torch
from _hra_test_models import config_json, conv_net, images, input_ids, load_in_hf, mlp, randomize, run, saved_tensors, tiny_llama

import peft_core
from peft_hra import HRAConfig

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.compat


def roundtrip(tmp_path, base, inputs, **config):
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.HRAConfig(**config)).eval()
    randomize(hf_model, "hra_u", seed=1, std=1.0)
    expected = run(hf_model, inputs)
    assert not torch.allclose(expected, run(base, inputs)), "trivial adapter: the test would prove nothing"
    hf_dir = tmp_path / "hf"
    hf_model.save_pretrained(hf_dir)
    got = run(peft_core.PeftModel.from_pretrained(copy.deepcopy(base), hf_dir), inputs)
    assert torch.equal(got, expected), (got - expected).abs().max()

    our_model = peft_core.get_peft_model(copy.deepcopy(base), HRAConfig(**config)).eval()
    randomize(our_model, "hra_u", seed=2, std=1.0)
    ours_out = run(our_model, inputs)
    our_dir = tmp_path / "ours"
    our_model.save_pretrained(our_dir)
    theirs = run(load_in_hf(peft, copy.deepcopy(base), our_dir), inputs)
    assert torch.equal(theirs, ours_out), (theirs - ours_out).abs().max()

    assert saved_tensors(our_dir) == saved_tensors(hf_dir)
    assert config_json(our_dir) == config_json(hf_dir)


LLAMA_CASES = {
    "r2": {"r": 2, "target_modules": ["q_proj", "v_proj", "down_proj"]},
    "gram_schmidt": {"r": 4, "apply_GS": True, "target_modules": ["q_proj", "o_proj"]},
    "default_targets": {"r": 2},
    "all_linear": {"r": 2, "target_modules": "all-linear", "task_type": "CAUSAL_LM"},
}


@pytest.mark.parametrize("case", sorted(LLAMA_CASES))
def test_tiny_llama(tmp_path, case):
    roundtrip(tmp_path, tiny_llama(), input_ids(), **LLAMA_CASES[case])
    if case == "r2":
        shapes = saved_tensors(tmp_path / "hf")
        assert shapes["base_model.model.model.layers.0.self_attn.q_proj.hra_u"] == ((32, 2), torch.float32)
        assert shapes["base_model.model.model.layers.0.mlp.down_proj.hra_u"] == ((64, 2), torch.float32)
    if case == "default_targets":
        assert config_json(tmp_path / "ours")["target_modules"] == ["q_proj", "v_proj"]


@pytest.mark.parametrize("apply_gs", [False, True])
def test_conv2d(tmp_path, apply_gs):
    roundtrip(tmp_path, conv_net(), images(), r=4, apply_GS=apply_gs, target_modules=["conv", "pw", "head"])
    assert saved_tensors(tmp_path / "hf")["base_model.model.conv.hra_u"] == ((36, 4), torch.float32)


def test_bias_and_modules_to_save(tmp_path):
    roundtrip(tmp_path, mlp(), torch.randn(4, 8), r=2, target_modules=["lin0", "lin1"], bias="hra_only",
              modules_to_save=["head"])
    keys = set(saved_tensors(tmp_path / "hf"))
    assert "base_model.model.lin0.base_layer.bias" in keys and "base_model.model.head.weight" in keys


def test_several_adapters_and_merge(tmp_path):
    base = tiny_llama()
    ids = input_ids()
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.HRAConfig(r=2, target_modules=["q_proj"]))
    hf_model.add_adapter("second", peft.HRAConfig(r=4, apply_GS=True, target_modules=["q_proj", "v_proj"]))
    randomize(hf_model, "hra_u", seed=3, std=1.0)
    hf_model.save_pretrained(tmp_path)
    expected = {}
    for name in ("default", "second"):
        hf_model.set_adapter(name)
        expected[name] = run(hf_model.eval(), ids)
    ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    ours.load_adapter(tmp_path / "second", "second")
    for name in ("default", "second"):
        ours.set_adapter(name)
        assert torch.equal(run(ours, ids), expected[name])
    hf_merged = hf_model.merge_and_unload()
    our_merged = ours.merge_and_unload()
    for (name, a), (_, b) in zip(hf_merged.named_parameters(), our_merged.named_parameters()):
        assert torch.equal(a, b), name
