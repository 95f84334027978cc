"""`layer_replication`: repeated decoder layers that share base weights, each copy with its own LoRA.

Against Hugging Face PEFT 0.21.2 on a tiny Llama: the same files (keys for the larger layer count),
bit-identical outputs in both directions; base weights are shared (no copies), and what can't work
(merging, a second different map, a model without a layer list) is refused.
"""

from __future__ import annotations

import peft_core
import pytest
import torch
from _hf_compat import roundtrip, tensors
from _lora_test_models import emb_mlp, input_ids, logits, randomize_lora, tiny_llama
from peft_core.errors import ConfigError
from peft_lora import LoraConfig

MAP = [[0, 2], [1, 2]]  # layers 0, 1, 1: three layers from two


def _run(model):
    return logits(model.eval(), input_ids())


@pytest.mark.compat
def test_replicated_layers_match_hf_both_ways(tmp_path):
    _, ours = roundtrip(tmp_path, tiny_llama, _run, dict(r=2, target_modules=["q_proj", "v_proj"], layer_replication=MAP))
    keys = tensors(tmp_path / "ours")
    assert "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight" in keys and len(keys) == 12
    layers = ours.get_base_model().model.layers
    assert len(layers) == 3 and ours.get_base_model().config.num_hidden_layers == 3
    assert layers[1].mlp.up_proj.weight is layers[2].mlp.up_proj.weight  # shared, not copied
    assert layers[1].self_attn.q_proj.get_base_layer().weight is layers[2].self_attn.q_proj.get_base_layer().weight
    assert [layers[i].self_attn.layer_idx for i in range(3)] == [0, 1, 2]


def test_copies_have_separate_adapters_and_merging_is_refused():
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], layer_replication=MAP))
    randomize_lora(model, seed=1)
    layers = model.get_base_model().model.layers
    assert not torch.equal(layers[1].self_attn.q_proj.lora_A["default"].weight, layers[2].self_attn.q_proj.lora_A["default"].weight)
    with pytest.raises(ValueError, match="share their base weights"):
        model.merge_and_unload()
    model.add_adapter("same", LoraConfig(r=2, target_modules=["v_proj"], layer_replication=MAP))  # no second replication
    model.add_adapter("none", LoraConfig(r=2, target_modules=["v_proj"]))
    assert len(model.get_base_model().model.layers) == 3
    with pytest.raises(ConfigError, match="already replicated"):
        model.add_adapter("other", LoraConfig(r=2, target_modules=["v_proj"], layer_replication=[[0, 2]]))
    assert "other" not in model.peft_config


def test_bad_maps_and_models_are_refused_and_the_model_left_alone():
    base = tiny_llama()
    with pytest.raises(ConfigError, match="does not fit"):
        peft_core.get_peft_model(base, LoraConfig(target_modules=["q_proj"], layer_replication=[[0, 5]]))
    assert len(base.model.layers) == 2 and base.config.num_hidden_layers == 2
    with pytest.raises(ConfigError, match="layer list"):
        peft_core.get_peft_model(emb_mlp(), LoraConfig(target_modules=["lin0"], layer_replication=MAP))
    with pytest.raises(ConfigError, match="not found"):
        peft_core.get_peft_model(base, LoraConfig(target_modules=["nope"], layer_replication=MAP))
    assert len(base.model.layers) == 2  # replication undone when injection fails
