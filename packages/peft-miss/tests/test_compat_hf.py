"""File compatibility with Hugging Face PEFT 0.21.2's MiSS, in both directions (bit-identical outputs),
and conversion of legacy Bone adapters."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from _miss_test_models import config_json, input_ids, load_in_hf, mlp, randomize, run, saved_tensors, tiny_llama
from safetensors.torch import load_file, save_file

import peft_core
from peft_miss import MissConfig, convert_bone_adapter

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.compat


def roundtrip(tmp_path, base, inputs, **config):
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.MissConfig(**config)).eval()
    randomize(hf_model, "miss_block", seed=1)
    expected = run(hf_model, inputs)
    assert not torch.allclose(expected, run(base, inputs)), "trivial adapter: the test would prove nothing"
    hf_dir = tmp_path / "hf"
    hf_model.save_pretrained(hf_dir)
    got = run(peft_core.PeftModel.from_pretrained(copy.deepcopy(base), hf_dir), inputs)
    assert torch.equal(got, expected), (got - expected).abs().max()

    our_model = peft_core.get_peft_model(copy.deepcopy(base), MissConfig(**config)).eval()
    randomize(our_model, "miss_block", seed=2)
    ours_out = run(our_model, inputs)
    our_dir = tmp_path / "ours"
    our_model.save_pretrained(our_dir)
    theirs = run(load_in_hf(peft, copy.deepcopy(base), our_dir), inputs)
    assert torch.equal(theirs, ours_out), (theirs - ours_out).abs().max()

    assert saved_tensors(our_dir) == saved_tensors(hf_dir)
    assert config_json(our_dir) == config_json(hf_dir)


LLAMA_CASES = {
    "balanced": {"r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"]},
    "padded": {"r": 5, "target_modules": ["q_proj", "down_proj"]},  # 32 and 64 inputs: not multiples of 5
    "bat": {"r": 4, "init_weights": "bat", "target_modules": ["q_proj", "v_proj", "o_proj"]},
    "mini": {"r": 4, "mini_r": 2, "init_weights": "mini", "target_modules": ["q_proj", "v_proj"]},
    "random_init": {"r": 8, "init_weights": False, "target_modules": ["k_proj"]},
    "default_targets": {"r": 4},
    "all_linear": {"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"},
}


@pytest.mark.parametrize("case", sorted(LLAMA_CASES))
def test_tiny_llama(tmp_path, case):
    roundtrip(tmp_path, tiny_llama(), input_ids(), **LLAMA_CASES[case])
    shapes = saved_tensors(tmp_path / "hf")
    key = "base_model.model.model.layers.0.self_attn.q_proj.miss_block"
    expected = {"balanced": (4, 32), "bat": (8, 4, 4), "mini": (4, 2), "padded": (5, 32)}
    if case in expected:
        assert shapes[key] == (expected[case], torch.float32)
    if case == "default_targets":
        assert config_json(tmp_path / "ours")["target_modules"] == ["q_proj", "v_proj"]


def test_bias_and_modules_to_save(tmp_path):
    roundtrip(tmp_path, mlp(), torch.randn(4, 8), r=4, target_modules=["lin0", "lin1"], bias="MiSS_only",
              modules_to_save=["head"])
    keys = set(saved_tensors(tmp_path / "hf"))
    assert "base_model.model.lin0.base_layer.bias" in keys and "base_model.model.head.weight" in keys


@pytest.mark.parametrize("variant", [True, "bat", "mini"])
def test_merged_weights_match_hf(tmp_path, variant):
    base = tiny_llama()
    config = {"r": 4, "mini_r": 4, "init_weights": variant, "target_modules": ["q_proj", "v_proj"]}
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.MissConfig(**config))
    randomize(hf_model, "miss_block", seed=4)
    hf_model.save_pretrained(tmp_path)
    hf_merged = hf_model.merge_and_unload()
    ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path).merge_and_unload()
    for (name, a), (_, b) in zip(hf_merged.named_parameters(), ours.named_parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("init", [True, "bat"])
def test_bone_adapter_conversion(tmp_path, init):
    """A Bone adapter (PEFT <= 0.18 layout) converts to a MiSS adapter that HF and we load identically."""
    base = tiny_llama()
    ids = input_ids()
    ours = peft_core.get_peft_model(copy.deepcopy(base), MissConfig(r=4, init_weights=init,
                                                                     target_modules=["q_proj", "v_proj"])).eval()
    randomize(ours, "miss_block", seed=6)
    expected = run(ours, ids)
    ours.save_pretrained(tmp_path / "miss")
    # Rewrite it in the legacy Bone format: peft_type BONE, BoneConfig's fields only, `.bone_block` keys.
    bone_dir = tmp_path / "bone"
    bone_dir.mkdir()
    config = json.loads((tmp_path / "miss" / "adapter_config.json").read_text())
    for field in ("mini_r", "miss_dropout", "peft_version"):
        config.pop(field)
    config["peft_type"] = "BONE"
    (bone_dir / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    state = load_file(tmp_path / "miss" / "adapter_model.safetensors")
    save_file({k.replace(".miss_block", ".bone_block"): v for k, v in state.items()}, bone_dir / "adapter_model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(Exception, match="BONE"):
        peft_core.PeftModel.from_pretrained(copy.deepcopy(base), bone_dir)

    convert_bone_adapter(bone_dir, tmp_path / "converted")
    assert set(saved_tensors(tmp_path / "converted")) == set(state)
    loaded = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "converted")
    assert torch.equal(run(loaded, ids), expected)
    in_hf = load_in_hf(peft, copy.deepcopy(base), tmp_path / "converted")
    assert torch.equal(run(in_hf, ids), expected)


def test_bone_conversion_refuses_other_adapters(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ValueError, match="Not a Bone adapter"):
        convert_bone_adapter(tmp_path, tmp_path / "out")
