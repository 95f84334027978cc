"""File compatibility with Hugging Face PEFT 0.21.2's HRA, in both directions (bit-identical outputs).

The kit's `hf_files` check round-trips every case of `peft_hra.conformance`. Here, with the kit's
`assert_both_ways`: default targets, `all-linear`, Conv2d with Gram-Schmidt, the bias modes, and
several adapters with their merge.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models, output_of, perturb
from peft_core.testing.hf import assert_both_ways, hf_peft_or_skip, read_adapter_config, saved_tensor_specs

import peft_core
from peft_hra import HRAConfig

peft = hf_peft_or_skip()
pytestmark = pytest.mark.compat


def _both_ways(tmp_path, model, **config):
    assert_both_ways(model, HRAConfig(**config), peft.HRAConfig(**config), tmp_path)


def test_default_targets_and_all_linear(tmp_path):
    _both_ways(tmp_path / "default", models.LLAMA, r=2)
    assert read_adapter_config(tmp_path / "default" / "ours")["target_modules"] == {"q_proj", "v_proj"}
    _both_ways(tmp_path / "all", models.LLAMA, r=2, target_modules="all-linear", task_type="CAUSAL_LM")
    shapes = saved_tensor_specs(tmp_path / "all" / "hf")
    assert shapes["base_model.model.model.layers.0.self_attn.q_proj.hra_u"] == ((32, 2), torch.float32)
    assert shapes["base_model.model.model.layers.0.mlp.down_proj.hra_u"] == ((64, 2), torch.float32)


def test_conv2d_gram_schmidt(tmp_path):
    _both_ways(tmp_path, models.CONV, r=4, apply_GS=True, target_modules=["conv2d", "pointwise", "head"])
    assert saved_tensor_specs(tmp_path / "hf")["base_model.model.conv2d.hra_u"] == ((27, 4), torch.float32)


def test_bias_and_modules_to_save(tmp_path):
    _both_ways(tmp_path, models.MLP, r=2, target_modules=["lin0", "lin1"], bias="hra_only", modules_to_save=["lin2"])
    keys = set(saved_tensor_specs(tmp_path / "hf"))
    assert "base_model.model.lin0.base_layer.bias" in keys and "base_model.model.lin2.weight" in keys


def test_several_adapters_and_merge(tmp_path):
    ids = models.LLAMA.make_inputs()["input_ids"]
    hf_model = peft.get_peft_model(models.LLAMA.build(), peft.HRAConfig(r=2, target_modules=["q_proj"]))
    hf_model.add_adapter("second", peft.HRAConfig(r=4, apply_GS=True, target_modules=["q_proj", "v_proj"]))
    for name in ("default", "second"):  # HF trains (and the kit perturbs) the active adapter only
        hf_model.set_adapter(name)
        perturb(hf_model, 1.0, seed=3)
    hf_model.save_pretrained(tmp_path)
    expected = {}
    with torch.no_grad():
        for name in ("default", "second"):
            hf_model.set_adapter(name)
            expected[name] = output_of(hf_model.eval()(ids))
        ours = peft_core.PeftModel.from_pretrained(models.LLAMA.build(), tmp_path)
        ours.load_adapter(tmp_path / "second", "second")
        for name in ("default", "second"):
            ours.set_adapter(name)
            assert torch.equal(output_of(ours(ids)), expected[name])
    hf_merged = hf_model.merge_and_unload()
    our_merged = ours.merge_and_unload()
    for (name, a), (_, b) in zip(hf_merged.named_parameters(), our_merged.named_parameters()):
        assert torch.equal(a, b), name
