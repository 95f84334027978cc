"""HRA layers: forward math, init, merge/unmerge, several adapters, disabling, mixed batches, bias modes."""

from __future__ import annotations

import copy

import pytest
import torch
from _hra_test_models import conv_net, images, mlp, run
from torch import nn

from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict
from peft_hra import HRAConfig
from peft_hra.layer import HRAConv2d, HRALinear


def _hra(model, **kwargs):
    kwargs.setdefault("init_weights", False)
    return get_peft_model(model, HRAConfig(**kwargs)).eval()


def _reflections(u: torch.Tensor) -> torch.Tensor:
    n = u.shape[0]
    h = torch.eye(n, dtype=torch.float64)
    for i in range(u.shape[1]):
        v = u[:, i].double() / u[:, i].double().norm()
        h = h @ (torch.eye(n, dtype=torch.float64) - 2 * torch.outer(v, v))
    return h


def test_linear_forward_matches_independent_math():
    base = mlp()
    model = _hra(copy.deepcopy(base), target_modules=["lin1"], r=3)
    layer = model.base_model.model.lin1
    assert isinstance(layer, HRALinear) and layer.hra_u["default"].shape == (16, 3)
    h = _reflections(layer.hra_u["default"].detach())
    x = torch.randn(4, 16)
    want = x.double() @ (base.lin1.weight.double() @ h).T + base.lin1.bias.double()
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


def test_conv_forward_matches_independent_math():
    base = conv_net()
    model = _hra(copy.deepcopy(base), target_modules=["conv"], r=4, apply_GS=True)
    layer = model.base_model.model.conv
    assert isinstance(layer, HRAConv2d) and layer.hra_u["default"].shape == (36, 4)
    q, _ = torch.linalg.qr(layer.hra_u["default"].detach().double())
    h = torch.eye(36, dtype=torch.float64) - 2 * q @ q.T
    weight = (base.conv.weight.double().reshape(6, -1) @ h).reshape(base.conv.weight.shape)
    x = images()
    want = torch.nn.functional.conv2d(x.double(), weight, base.conv.bias.double(), padding=1)
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


def test_default_init_is_identity_for_even_r_and_warns_for_odd_r():
    base = conv_net()
    x = images()
    model = get_peft_model(copy.deepcopy(base), HRAConfig(target_modules=["conv", "head"], r=4)).eval()
    u = model.base_model.model.conv.hra_u["default"]
    assert torch.equal(u[:, 0], u[:, 1]) and not torch.equal(u[:, 1], u[:, 2])
    torch.testing.assert_close(run(model, x), run(base, x), atol=1e-6, rtol=0)
    with pytest.warns(UserWarning, match="odd"):
        odd = get_peft_model(copy.deepcopy(base), HRAConfig(target_modules=["head"], r=3)).eval()
    assert not torch.allclose(run(odd, x), run(base, x))


@pytest.mark.parametrize("apply_gs", [False, True])
def test_merge_equals_unmerged_and_unmerge_restores(apply_gs):
    base = conv_net()
    x = images()
    model = _hra(copy.deepcopy(base), target_modules=["conv", "pw", "head"], r=2, apply_GS=apply_gs)
    unmerged = run(model, x)
    assert not torch.allclose(unmerged, run(base, x))
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), unmerged, atol=1e-5, rtol=1e-5)
    model.unmerge_adapter()
    for n, p in model.named_parameters():
        if n in weights:
            torch.testing.assert_close(p, weights[n], atol=1e-5, rtol=1e-5)
    merged = copy.deepcopy(model).merge_and_unload()
    assert type(merged.conv) is nn.Conv2d
    torch.testing.assert_close(run(merged, x), unmerged, atol=1e-5, rtol=1e-5)


def test_safe_merge_refuses_non_finite_weights():
    model = _hra(mlp(), target_modules=["lin0"], r=2)
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.hra_u["default"].zero_()  # 0 / 0 -> NaN
    before = layer.base_layer.weight.detach().clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.base_layer.weight, before) and not layer.merged


def test_several_adapters_chain_disable_delete_and_mixed_batch():
    base = mlp()
    x = torch.randn(5, 8)
    model = _hra(copy.deepcopy(base), target_modules=["lin0"], r=2)
    model.add_adapter("other", HRAConfig(target_modules=["lin0", "lin1"], r=4, init_weights=False))
    first = run(model, x)
    model.set_adapter("other")
    second = run(model, x)
    assert not torch.allclose(first, second)
    with model.disable_adapter():
        assert torch.equal(run(model, x), run(base, x))
    names = ["other", "__base__", "default", "default", "other"]
    mixed = model(x, adapter_names=names)
    want = torch.stack([{"default": first, "other": second, "__base__": run(base, x)}[n][i] for i, n in enumerate(names)])
    torch.testing.assert_close(mixed, want, atol=1e-6, rtol=1e-5)
    model.set_adapter(["default", "other"])
    both = run(model, x)
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), both, atol=1e-5, rtol=1e-5)
    model.unmerge_adapter()
    model.delete_adapter("other")
    model.set_adapter("default")
    torch.testing.assert_close(run(model, x), first, atol=1e-6, rtol=1e-5)


def test_unsupported_layers_and_bad_rank_are_refused():
    with pytest.raises(ValueError, match="grouped"):
        get_peft_model(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), HRAConfig(target_modules=["0"]))
    with pytest.raises(TypeError, match="not supported by HRA"):
        get_peft_model(nn.Sequential(nn.Embedding(10, 8)), HRAConfig(target_modules=["0"]))
    with pytest.raises(ValueError, match="positive"):
        get_peft_model(mlp(), HRAConfig(target_modules=["lin0"], r=0))


def test_bias_modes():
    model = _hra(mlp(), target_modules=["lin0"], r=2, bias="hra_only")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"base_model.model.lin0.hra_u.default", "base_model.model.lin0.base_layer.bias"}
    assert set(get_peft_model_state_dict(model)) == {
        "base_model.model.lin0.hra_u",
        "base_model.model.lin0.base_layer.bias",
    }


def test_save_load_roundtrip_low_cpu_mem_usage(tmp_path):
    base = conv_net()
    x = images()
    model = _hra(copy.deepcopy(base), target_modules=["conv", "head"], r=2)
    expected = run(model, x)
    model.save_pretrained(tmp_path)
    for low_mem in (False, True):
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=low_mem)
        assert torch.equal(run(loaded, x), expected)


@pytest.mark.parametrize("apply_gs", [False, True])
def test_smoke(apply_gs):
    from peft_core.testing import smoke_test

    smoke_test("hra", apply_GS=apply_gs)
