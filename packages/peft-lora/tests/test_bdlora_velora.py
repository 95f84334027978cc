"""BD-LoRA (`use_bdlora`) and VeLoRA (`velora_config`) against Hugging Face PEFT 0.21.2.

Both ways on a tiny Llama: the same files (block-diagonal factors `[out, in/nblocks]`, VeLoRA's saved
projection vector), bit-identical outputs; the block-diagonal forward equals the LoRA of the full
block-diagonal matrices (and merging gives the same model); VeLoRA's training step (its approximate
gradient of A and its projection update) is bit-identical to HF's.
"""

from __future__ import annotations

import copy

import peft_core
import pytest
import torch
from _hf_compat import hf_peft, roundtrip
from _lora_test_models import input_ids, logits, randomize_lora, tiny_llama
from peft_core.errors import ConfigError
from peft_lora import LoraConfig
from peft_lora.variants.bdlora import BlockDiagonalLinear
from peft_lora.variants.configs import BdLoraConfig, VeloraConfig

BD = dict(target_modules_bd_a=["o_proj", "down_proj"], target_modules_bd_b=["q_proj", "v_proj"], nblocks=2)


def _run(model):
    return logits(model.eval(), input_ids())


@pytest.mark.compat
def test_bdlora_matches_hf_both_ways(tmp_path):
    _, ours = roundtrip(
        tmp_path, tiny_llama, _run, dict(r=4, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"], use_bdlora=BD)
    )
    layer = ours.base_model.model.model.layers[0]
    assert isinstance(layer.self_attn.q_proj.lora_B["default"], BlockDiagonalLinear)
    assert tuple(layer.self_attn.q_proj.lora_B["default"].weight.shape) == (32, 2)
    assert tuple(layer.mlp.down_proj.lora_A["default"].weight.shape) == (4, 32)


def test_bdlora_forward_and_merge_equal_full_block_diagonal_matrices():
    model = peft_core.get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "o_proj"], use_bdlora=BD))
    randomize_lora(model, seed=1)
    adapted = _run(model)
    layer = model.base_model.model.model.layers[0].self_attn.o_proj
    a = layer.lora_A["default"].full_weight()
    assert a.shape == (4, 32) and torch.count_nonzero(a[:2, 16:]) == 0  # off-diagonal blocks are zero
    x = torch.randn(3, 32)
    torch.testing.assert_close(layer.lora_A["default"](x), x @ a.T)
    merged = copy.deepcopy(model).merge_and_unload()
    torch.testing.assert_close(_run(merged), adapted, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="matches neither"):
        peft_core.get_peft_model(tiny_llama(), LoraConfig(target_modules=["k_proj"], use_bdlora=BD))
    with pytest.raises(ConfigError, match="both"):
        BdLoraConfig(target_modules_bd_a=["q_proj"], target_modules_bd_b=["q_proj"])
    with pytest.raises(ConfigError, match="combined"):
        peft_core.get_peft_model(tiny_llama(), LoraConfig(target_modules=["q_proj"], use_bdlora=BD, use_dora=True))


@pytest.mark.compat
@pytest.mark.parametrize("init_type", ["batch_average", "random"])
def test_velora_matches_hf_both_ways_and_in_training(tmp_path, init_type):
    peft = hf_peft()
    from peft.tuners.lora.config import VeloraConfig as HFVeloraConfig

    config = dict(r=4, target_modules=["q_proj", "down_proj"], velora_config=dict(num_groups=4, init_type=init_type))
    roundtrip(tmp_path, tiny_llama, _run, config)

    kw = dict(r=4, target_modules=["q_proj", "down_proj"])
    torch.manual_seed(3)
    theirs = peft.get_peft_model(tiny_llama(), peft.LoraConfig(velora_config=HFVeloraConfig(num_groups=4, init_type=init_type), **kw))
    torch.manual_seed(3)
    ours = peft_core.get_peft_model(tiny_llama(), LoraConfig(velora_config=VeloraConfig(num_groups=4, init_type=init_type), **kw))
    for model in (theirs, ours):
        randomize_lora(model, seed=4)
        model.train()
        ids = input_ids()
        model(ids, labels=ids).loss.backward()
    grads = lambda m: {n: p.grad for n, p in m.named_parameters() if p.grad is not None}  # noqa: E731
    assert sorted(grads(ours)) == sorted(grads(theirs))
    assert all(torch.equal(grads(ours)[n], grads(theirs)[n]) for n in grads(ours))
    buffers = lambda m: {n: b for n, b in m.named_buffers() if "velora" in n}  # noqa: E731
    assert buffers(ours) and all(torch.equal(buffers(ours)[n], buffers(theirs)[n]) for n in buffers(ours))
    # only A's gradient is approximate: B's equals plain LoRA's
    plain = peft_core.get_peft_model(tiny_llama(), LoraConfig(**kw))
    randomize_lora(plain, seed=4)
    plain.train()
    plain(input_ids(), labels=input_ids()).loss.backward()
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"
    torch.testing.assert_close(grads(ours)[name], grads(plain)[name])
    name_a = name.replace("lora_B", "lora_A")
    assert not torch.equal(grads(ours)[name_a], grads(plain)[name_a])
