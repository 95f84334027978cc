"""The speed-ups keep Hugging Face PEFT's bits: fast `nn.Linear` construction draws the same numbers,
power-of-two scalings folded into `lora_B`'s weight give the same outputs and gradients, merges the
same weights (see tools/bench for the timings)."""

from __future__ import annotations

import copy
import math
import warnings

import peft
import peft_core
import peft_lora
import pytest
import torch
from _lora_test_models import input_ids, randomize_lora, tiny_gpt2, tiny_llama
from peft_lora.init import kaiming_uniform_, new_linear
from peft_lora.layers.base import exact_scale, scaled_product
from torch import nn


@pytest.mark.parametrize("bias", [False, True])
def test_new_linear_is_nn_linear_with_the_same_draws(bias):
    torch.manual_seed(5)
    expected = nn.Linear(24, 8, bias=bias)
    after_expected = torch.rand(3)
    torch.manual_seed(5)
    got = new_linear(24, 8, bias=bias)
    assert type(got) is nn.Linear and (got.in_features, got.out_features) == (24, 8)
    assert [n for n, _ in got.named_parameters()] == [n for n, _ in expected.named_parameters()]
    for a, b in zip(got.parameters(), expected.parameters()):
        assert torch.equal(a, b) and a.requires_grad
    assert torch.equal(torch.rand(3), after_expected)  # the generator advanced alike
    assert repr(got) == repr(expected)
    with torch.device("meta"):
        assert new_linear(24, 8, bias=bias).weight.is_meta


def test_kaiming_uniform_matches_torch():
    for fan_in in (1, 3, 16, 64, 1000):
        a, b = torch.empty(4, fan_in), torch.empty(4, fan_in)
        torch.manual_seed(1)
        nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        torch.manual_seed(1)
        kaiming_uniform_(b)
        assert torch.equal(a, b)


def test_scaled_product_has_the_bits_of_product_times_scaling():
    g = torch.Generator().manual_seed(0)
    assert [exact_scale(s) for s in (1, 2, 4.0, 0.5, 3, 1.5, 64)] == [False, True, True, False, False, False, True]
    for out_f, r, in_f in ((7, 3, 5), (64, 8, 33), (130, 16, 97)):
        b, a = torch.randn(out_f, r, generator=g), torch.randn(r, in_f, generator=g)
        for s in (1.0, 2.0, 4.0, 0.5, 3.0, 0.37):
            assert torch.equal(scaled_product(b, a, s), (b @ a) * s)


@pytest.mark.parametrize("alpha", [16, 32, 12])  # r=8: scaling 2, 4 (folded into lora_B) and 1.5 (not)
@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt2])
def test_scaled_forward_backward_and_merge_are_bit_identical_to_hf(make, alpha):
    targets = ["q_proj", "v_proj", "down_proj"] if make is tiny_llama else ["c_attn", "c_fc"]
    config = dict(r=8, lora_alpha=alpha, target_modules=targets)
    base = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**config))
        ours = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(**config))
    randomize_lora(hf_model, seed=3)
    ours.load_state_dict(hf_model.state_dict())
    ids = input_ids()
    out_hf, out_ours = hf_model(input_ids=ids).logits, ours(input_ids=ids).logits
    assert torch.equal(out_ours, out_hf)
    out_hf.square().mean().backward()
    out_ours.square().mean().backward()
    grads_hf = {n: p.grad for n, p in hf_model.named_parameters() if p.requires_grad}
    grads_ours = {n: p.grad for n, p in ours.named_parameters() if p.requires_grad}
    assert grads_hf.keys() == grads_ours.keys()
    for name in grads_hf:
        assert torch.equal(grads_ours[name], grads_hf[name]), name
    merged_hf, merged_ours = hf_model.merge_and_unload(), ours.merge_and_unload()
    for (name, a), (_, b) in zip(merged_hf.state_dict().items(), merged_ours.state_dict().items()):
        assert torch.equal(b, a), name


def test_hooked_lora_b_still_runs_its_hooks():
    model = peft_core.get_peft_model(tiny_llama(), peft_lora.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    calls = []
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    layer.lora_B["default"].register_forward_hook(lambda *args: calls.append(1))
    model(input_ids=input_ids())
    assert calls == [1]


def test_new_linear_goes_through_a_patched_register_parameter(monkeypatch):
    original = nn.Module.register_parameter

    def to_meta(self, name, param):  # what accelerate's init_empty_weights does
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    monkeypatch.setattr(nn.Module, "register_parameter", to_meta)
    layer = new_linear(8, 4, bias=True)
    assert layer.weight.is_meta and layer.bias.is_meta


def test_embedding_and_dora_containers_exist_only_where_used():
    config = peft_lora.LoraConfig(r=4, target_modules=["q_proj", "embed_tokens"], use_dora=False)
    model = peft_core.get_peft_model(tiny_llama(), config)
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    emb = model.base_model.model.model.embed_tokens
    assert len(q.lora_embedding_A) == 0 and "default" not in q.lora_magnitude_vector
    assert "lora_embedding_A" not in q._modules and "lora_embedding_A" in emb._modules
    assert "default" in emb.lora_embedding_A and "default" in q.lora_A
    model.add_adapter("dora", peft_lora.LoraConfig(r=4, target_modules=["q_proj"], use_dora=True))
    assert "dora" in q.lora_magnitude_vector and "lora_magnitude_vector" in q._modules
    saved = peft_core.get_peft_model_state_dict(model, adapter_name="dora")
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector" in saved


def _count_fused(monkeypatch):
    """Count the fused in-place products (forward and merge) that the LoRA Linear layer runs."""
    import peft_lora.layers.linear as linear_mod

    calls = {"forward": 0, "merge": 0}
    add_product = linear_mod.add_product_

    def counting_add_product(out, a, bt):
        done = add_product(out, a, bt)
        calls["forward"] += bool(done)
        return done

    merge_delta = linear_mod.Linear._merge_delta_

    def counting_merge(self, name, weight):
        done = merge_delta(self, name, weight)
        calls["merge"] += bool(done)
        return done

    monkeypatch.setattr(linear_mod, "add_product_", counting_add_product)
    monkeypatch.setattr(linear_mod.Linear, "_merge_delta_", counting_merge)
    return calls


def _hf_and_ours(base, config, dtype=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**config), **kw)
        ours = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(**config), **kw)
    randomize_lora(hf_model, seed=3)
    ours.load_state_dict(hf_model.state_dict())
    return hf_model.eval(), ours.eval()


@pytest.mark.parametrize("alpha, fused", [(16, True), (8, True), (12, False)])  # r=8: scaling 2, 1, 1.5
@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt2])
def test_inference_adds_the_update_in_one_fused_product_with_hf_bits(monkeypatch, make, alpha, fused):
    """Under no_grad the update goes into the base output with one addmm_ (no delta tensor) when that
    keeps HF's bits; the outputs and the merged weights equal HF's either way."""
    targets = ["q_proj", "v_proj", "down_proj"] if make is tiny_llama else ["c_attn", "c_fc"]
    hf_model, ours = _hf_and_ours(make(), dict(r=8, lora_alpha=alpha, target_modules=targets))
    calls = _count_fused(monkeypatch)
    ids = input_ids()
    with torch.no_grad():
        out_hf, out_ours = hf_model(input_ids=ids).logits, ours(input_ids=ids).logits
    assert torch.equal(out_ours, out_hf)
    assert (calls["forward"] > 0) == fused
    for safe in (False, True):
        hf_copy, ours_copy = copy.deepcopy(hf_model), copy.deepcopy(ours)
        merged_hf = hf_copy.merge_and_unload(safe_merge=safe)
        merged_ours = ours_copy.merge_and_unload(safe_merge=safe)
        for (name, a), (_, b) in zip(merged_hf.state_dict().items(), merged_ours.state_dict().items()):
            assert torch.equal(b, a), (safe, name)
    assert (calls["merge"] > 0) == fused


@pytest.mark.parametrize("rows, k, n", [(1, 16, 24), (7, 8, 32), (64, 16, 96), (300, 4, 130), (2048, 16, 512)])
def test_add_product_has_the_bits_of_product_then_sum(rows, k, n):
    from peft_lora.layers.base import add_product_

    g = torch.Generator().manual_seed(rows)
    out, a, b = torch.randn(rows, n, generator=g), torch.randn(rows, k, generator=g), torch.randn(n, k, generator=g)
    expected = out + a @ b.t()
    fused = out.clone()
    assert add_product_(fused, a, b.t()) and torch.equal(fused, expected)
    out3 = out.view(1, rows, n).clone()
    assert add_product_(out3, a.view(1, rows, k), b.t()) and torch.equal(out3.view(rows, n), expected)
    strided = torch.zeros(2, rows, n)[:, :, : n - 1]
    assert not add_product_(strided, torch.zeros(2, rows, k), b[:-1].t())  # refused, left untouched
    assert not strided.any()


@pytest.mark.parametrize("names", [["default", "default", "a1", "a1", "a2", "a2", "a3", "a3"],  # contiguous
                                   ["default", "a1", "a2", "a3"] * 2])  # interleaved: strided rows
def test_mixed_batch_rows_get_the_fused_update_with_hf_bits(monkeypatch, names):
    """Contiguous groups of rows take one addmm_ per adapter; strided ones the two-step update."""
    config = dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "gate_proj"])
    hf_model, ours = _hf_and_ours(tiny_llama(), config)
    for i in range(1, 4):
        for model, lib in ((hf_model, peft), (ours, peft_lora)):
            model.add_adapter(f"a{i}", lib.LoraConfig(**config))
    randomize_lora(hf_model, seed=4)
    ours.load_state_dict(hf_model.state_dict())
    calls = _count_fused(monkeypatch)
    ids = input_ids(batch=8)
    with torch.no_grad():
        out_hf = hf_model(input_ids=ids, adapter_names=names).logits
        out_ours = ours(input_ids=ids, adapter_names=names).logits
    assert torch.equal(out_ours, out_hf)
    contiguous = names[0] == names[1]
    assert calls["forward"] == (4 * 3 * 2 if contiguous else 0)  # 4 adapters x 3 targets x 2 layers


def test_training_and_half_precision_keep_the_two_step_update(monkeypatch):
    """With autograd recording, or bf16 adapters, the update is computed as HF computes it."""
    config = dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    calls = _count_fused(monkeypatch)
    hf_model, ours = _hf_and_ours(tiny_llama(), config)
    ours(input_ids=input_ids()).logits.sum().backward()  # trainable adapter, grad enabled
    assert calls["forward"] == 0
    base = tiny_llama().to(torch.bfloat16)
    hf_model, ours = _hf_and_ours(base, config, autocast_adapter_dtype=False)
    with torch.no_grad():
        assert torch.equal(ours(input_ids=input_ids()).logits, hf_model(input_ids=input_ids()).logits)
    merged_hf, merged_ours = hf_model.merge_and_unload(), ours.merge_and_unload()
    for (name, a), (_, b) in zip(merged_hf.state_dict().items(), merged_ours.state_dict().items()):
        assert torch.equal(b, a), name
    assert calls == {"forward": 0, "merge": 0}


@pytest.mark.parametrize("extra", [{}, {"lora_bias": True}, {"init_lora_weights": "gaussian"}, {"init_lora_weights": False}])
@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt2])
def test_same_seed_gives_hf_initial_adapter_and_generator_state(make, extra):
    """get_peft_model after the same manual_seed gives HF's initial adapter weights, bit for bit, and
    leaves the default generator where HF leaves it (so later draws, e.g. dropout masks, agree)."""
    targets = ["q_proj", "v_proj", "down_proj"] if make is tiny_llama else ["c_attn", "c_fc"]
    config = dict(r=4, lora_alpha=8, target_modules=targets, **extra)
    base = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(7)
        hf_model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**config))
        hf_next = torch.rand(4)
        torch.manual_seed(7)
        ours = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(**config))
        ours_next = torch.rand(4)
    hf_state, ours_state = hf_model.state_dict(), ours.state_dict()
    assert hf_state.keys() == ours_state.keys()
    for key in hf_state:
        assert torch.equal(ours_state[key], hf_state[key]), key
    assert torch.equal(ours_next, hf_next)
