"""File compatibility with Hugging Face PEFT 0.21.2's MiSS, in both directions (bit-identical outputs),
and conversion of legacy Bone adapters.

The kit's `hf_files` check round-trips every case of both suites of `peft_miss.conformance` (balanced,
padded, `bat`, `mini`). Here, with the kit's `assert_both_ways`: default targets, `all-linear`, a
random start, saved shapes, the bias modes, merged weights, and Bone adapters.
"""

from __future__ import annotations

import json

import pytest
import torch
from peft_core.testing import models, output_of, perturb
from peft_core.testing.hf import assert_both_ways, assert_merges_like_hf, hf_peft_or_skip, load_in_hf, read_adapter_config, saved_tensor_specs
from safetensors.torch import load_file, save_file

import peft_core
from peft_miss import MissConfig, convert_bone_adapter

peft = hf_peft_or_skip()
pytestmark = pytest.mark.compat


def _both_ways(tmp_path, model, **config):
    assert_both_ways(model, MissConfig(**config), peft.MissConfig(**config), tmp_path)


LLAMA_CASES = {
    "balanced": ({"r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"]}, (4, 32)),
    "padded": ({"r": 5, "target_modules": ["q_proj", "down_proj"]}, (5, 32)),  # 32 and 64 inputs: not multiples of 5
    "bat": ({"r": 4, "init_weights": "bat", "target_modules": ["q_proj", "v_proj", "o_proj"]}, (8, 4, 4)),
    "mini": ({"r": 4, "mini_r": 2, "init_weights": "mini", "target_modules": ["q_proj", "v_proj"]}, (4, 2)),
    "random_init": ({"r": 8, "init_weights": False, "target_modules": ["q_proj"]}, (8, 32)),
    "all_linear": ({"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}, (8, 32)),
}


@pytest.mark.parametrize("case", sorted(LLAMA_CASES))
def test_llama_and_saved_shapes(tmp_path, case):
    config, shape = LLAMA_CASES[case]
    _both_ways(tmp_path, models.LLAMA, **config)
    key = "base_model.model.model.layers.0.self_attn.q_proj.miss_block"
    assert saved_tensor_specs(tmp_path / "hf")[key] == (shape, torch.float32)


def test_default_targets(tmp_path):
    _both_ways(tmp_path, models.LLAMA, r=4)
    assert read_adapter_config(tmp_path / "ours")["target_modules"] == {"q_proj", "v_proj"}


def test_bias_and_modules_to_save(tmp_path):
    _both_ways(tmp_path, models.MLP, r=4, target_modules=["lin0", "lin1"], bias="MiSS_only", modules_to_save=["lin2"])
    keys = set(saved_tensor_specs(tmp_path / "hf"))
    assert "base_model.model.lin0.base_layer.bias" in keys and "base_model.model.lin2.weight" in keys


@pytest.mark.parametrize("variant", [True, "bat", "mini"])
def test_merged_weights_match_hf(tmp_path, variant):
    config = {"r": 4, "mini_r": 4, "init_weights": variant, "target_modules": ["q_proj", "v_proj"]}
    hf_model = peft.get_peft_model(models.LLAMA.build(), peft.MissConfig(**config))
    perturb(hf_model, 0.1, seed=4)
    assert_merges_like_hf(models.LLAMA.build, hf_model, tmp_path)


@pytest.mark.parametrize("init", [True, "bat"])
def test_bone_adapter_conversion(tmp_path, init):
    """A Bone adapter (PEFT <= 0.18 layout) converts to a MiSS adapter that HF and we load identically."""
    ids = models.LLAMA.make_inputs()["input_ids"]
    config = MissConfig(r=4, init_weights=init, target_modules=["q_proj", "v_proj"])
    ours = peft_core.get_peft_model(models.LLAMA.build(), config).eval()
    perturb(ours, 0.1, seed=6)
    with torch.no_grad():
        expected = output_of(ours(ids))
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
        peft_core.PeftModel.from_pretrained(models.LLAMA.build(), bone_dir)

    convert_bone_adapter(bone_dir, tmp_path / "converted")
    assert set(saved_tensor_specs(tmp_path / "converted")) == set(state)
    with torch.no_grad():
        loaded = peft_core.PeftModel.from_pretrained(models.LLAMA.build(), tmp_path / "converted")
        assert torch.equal(output_of(loaded(ids)), expected)
        in_hf = load_in_hf(models.LLAMA.build(), tmp_path / "converted")
        assert torch.equal(output_of(in_hf(ids)), expected)


def test_bone_conversion_refuses_other_adapters(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ValueError, match="Not a Bone adapter"):
        convert_bone_adapter(tmp_path, tmp_path / "out")
