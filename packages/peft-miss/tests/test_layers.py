"""MiSS layers: the three variants' math, merge/unmerge, several adapters, mixed batches, bias modes."""

from __future__ import annotations

import copy

import pytest
import torch
from _miss_test_models import mlp, run
from torch import nn

from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict
from peft_miss import MissConfig
from peft_miss.layer import MissLinear


def _miss(model, randomize=True, **kwargs):
    model = get_peft_model(model, MissConfig(**kwargs)).eval()
    if randomize:
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "miss_block" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _dense_delta(block: torch.Tensor, in_features: int, out_features: int, mini_r: int | None = None) -> torch.Tensor:
    """ΔW[o, i] = S[i mod r, o], written as explicit loops (S tiled from [r, mini_r] for 'mini')."""
    r = block.shape[0]
    delta = torch.zeros(out_features, in_features, dtype=torch.float64)
    for o in range(out_features):
        for i in range(in_features):
            col = o % mini_r if mini_r else o
            delta[o, i] = block[i % r, col]
    return delta


@pytest.mark.parametrize("r, variant", [(4, True), (5, True), (3, "mini")])
def test_balanced_and_mini_forward_match_dense_delta(r, variant):
    base = mlp()
    model = _miss(copy.deepcopy(base), target_modules=["lin1"], r=r, mini_r=4, init_weights=variant)
    layer = model.base_model.model.lin1
    assert isinstance(layer, MissLinear)
    block = layer.miss_block["default"].detach().double()
    assert block.shape == ((r, 12) if variant is True else (r, 4))
    delta = _dense_delta(block, 16, 12, mini_r=4 if variant == "mini" else None)
    x = torch.randn(3, 16)
    want = x.double() @ (base.lin1.weight.double() + delta).T + base.lin1.bias.double()
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.get_delta_weight("default").double(), delta)


def test_bat_forward_matches_blockwise_formula():
    base = mlp()
    model = _miss(copy.deepcopy(base), target_modules=["lin1"], r=4, init_weights="bat")
    layer = model.base_model.model.lin1
    block = layer.miss_block["default"].detach().double()
    assert block.shape == (3, 4, 4)  # out 12 / r
    w = base.lin1.weight.detach().double()
    want_w = w.clone()
    for h in range(3):
        for g in range(4):
            wb = w[h * 4 : (h + 1) * 4, g * 4 : (g + 1) * 4]
            want_w[h * 4 : (h + 1) * 4, g * 4 : (g + 1) * 4] = wb + wb @ block[h] + block[h]
    x = torch.randn(3, 16)
    want = x.double() @ want_w.T + base.lin1.bias.double()
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", [True, "bat", "mini"])
def test_zero_init_is_a_no_op(variant):
    base = mlp()
    model = _miss(copy.deepcopy(base), randomize=False, target_modules=["lin0", "lin1"], r=4, mini_r=2, init_weights=variant)
    x = torch.randn(3, 8)
    assert torch.equal(run(model, x), run(base, x))


@pytest.mark.parametrize("r, variant", [(4, True), (3, True), (4, "bat"), (4, "mini")])
def test_merge_equals_unmerged_and_unmerge_restores(r, variant):
    base = mlp()
    x = torch.randn(5, 8)
    model = _miss(copy.deepcopy(base), target_modules=["lin0", "lin1"], r=r, mini_r=4, init_weights=variant)
    unmerged = run(model, x)
    assert not torch.allclose(unmerged, run(base, x))
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), unmerged, atol=1e-6, rtol=1e-5)
    model.unmerge_adapter()
    for n, p in model.named_parameters():
        if n in weights:
            torch.testing.assert_close(p, weights[n], atol=1e-6, rtol=1e-5)
    merged = copy.deepcopy(model).merge_and_unload()
    assert type(merged.lin0) is nn.Linear
    torch.testing.assert_close(run(merged, x), unmerged, atol=1e-6, rtol=1e-5)


def test_safe_merge_refuses_non_finite_weights():
    model = _miss(mlp(), target_modules=["lin0"], r=4)
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.miss_block["default"][0, 0] = float("nan")
    before = layer.base_layer.weight.detach().clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.base_layer.weight, before) and not layer.merged


def test_several_adapters_of_different_variants_and_mixed_batch():
    base = mlp()
    x = torch.randn(5, 8)
    model = _miss(copy.deepcopy(base), target_modules=["lin0", "lin1"], r=4)
    model.add_adapter("bat", MissConfig(target_modules=["lin0", "lin1"], r=4, init_weights="bat"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "miss_block.bat" in name:
                p.normal_(std=0.1)
    first = run(model, x)
    model.set_adapter("bat")
    second = run(model, x)
    assert not torch.allclose(first, second)
    with model.disable_adapter():
        assert torch.equal(run(model, x), run(base, x))
    names = ["bat", "__base__", "default", "default", "bat"]
    mixed = model(x, adapter_names=names)
    want = torch.stack([{"default": first, "bat": second, "__base__": run(base, x)}[n][i] for i, n in enumerate(names)])
    torch.testing.assert_close(mixed, want, atol=1e-6, rtol=1e-5)
    model.set_adapter(["default", "bat"])  # applied in turn: W + ΔW, then the 'bat' transform
    both = run(model, x)
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), both, atol=1e-5, rtol=1e-5)
    model.unmerge_adapter()
    model.delete_adapter("bat")
    model.set_adapter("default")
    torch.testing.assert_close(run(model, x), first, atol=1e-6, rtol=1e-5)


def test_dropout_only_in_training():
    model = _miss(mlp(), target_modules=["lin1"], r=4, miss_dropout=0.5)
    x = torch.randn(3, 8)
    assert torch.equal(run(model, x), run(model, x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_unsupported_layers_and_bad_shapes_are_refused():
    with pytest.raises(TypeError, match="not supported by MiSS"):
        get_peft_model(nn.Sequential(nn.Conv2d(4, 4, 3)), MissConfig(target_modules=["0"], r=2))
    with pytest.raises(ValueError, match="less than or equal"):
        get_peft_model(mlp(), MissConfig(target_modules=["lin0"], r=64))
    with pytest.raises(ValueError, match="bat"):
        get_peft_model(mlp(), MissConfig(target_modules=["lin1"], r=5, init_weights="bat"))
    with pytest.raises(ValueError, match="mini_r"):
        get_peft_model(mlp(), MissConfig(target_modules=["lin1"], r=4, mini_r=5, init_weights="mini"))


def test_bias_modes():
    model = _miss(mlp(), target_modules=["lin0"], r=4, bias="MiSS_only")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"base_model.model.lin0.miss_block.default", "base_model.model.lin0.base_layer.bias"}
    assert set(get_peft_model_state_dict(model)) == {
        "base_model.model.lin0.miss_block",
        "base_model.model.lin0.base_layer.bias",
    }


def test_save_load_roundtrip_low_cpu_mem_usage(tmp_path):
    base = mlp()
    x = torch.randn(4, 8)
    model = _miss(copy.deepcopy(base), target_modules=["lin0", "lin1"], r=4, init_weights="bat")
    expected = run(model, x)
    model.save_pretrained(tmp_path)
    for low_mem in (False, True):
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=low_mem)
        assert torch.equal(run(loaded, x), expected)


@pytest.mark.parametrize("variant", [False, "bat", "mini"])
def test_smoke(variant):
    from peft_core.testing import smoke_test

    smoke_test("miss", r=4, init_weights=variant)  # the default r=64 exceeds the smoke model's 16 features
