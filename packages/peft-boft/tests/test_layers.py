"""BOFT layers: forward math, merge/unmerge, several adapters, disabling, mixed batches, dropout, bias modes."""

from __future__ import annotations

import copy

import pytest
import torch
from _boft_test_models import conv_net, images, mlp, run
from torch import nn

from peft_boft import BOFTConfig
from peft_boft.layer import Conv2d, Linear
from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict


def _boft(model, **kwargs):
    kwargs.setdefault("init_weights", False)
    return get_peft_model(model, BOFTConfig(**kwargs)).eval()


def _independent_rotation(layer, name: str) -> torch.Tensor:
    """Rebuild the rotation from boft_R with float64 matrices: prod_i P_i blockdiag(C(R_i)) P_i^T."""
    r = layer.boft_R[name].detach().double()
    m, k, b, _ = r.shape
    n = k * b
    eye_b = torch.eye(b, dtype=torch.float64)
    total = torch.eye(n, dtype=torch.float64)
    for i in range(m):
        blocks = []
        for j in range(k):
            s = 0.5 * (r[i, j] - r[i, j].T)
            blocks.append((eye_b - s) @ torch.linalg.inv(eye_b + s))
        perm = layer.boft_P[name].indices[i]
        p = torch.zeros(n, n, dtype=torch.float64)
        p[torch.arange(n), perm] = 1.0
        total = p @ torch.block_diag(*blocks) @ p.T @ total
    return total


@pytest.mark.parametrize(
    "options",
    [{"boft_block_size": 4}, {"boft_block_size": 0, "boft_block_num": 2}, {"boft_block_size": 2, "boft_n_butterfly_factor": 3}],
)
def test_linear_forward_matches_independent_math(options):
    base = mlp()
    model = _boft(copy.deepcopy(base), target_modules=["lin0", "lin1"], **options)
    layer = model.base_model.model.lin1
    assert isinstance(layer, Linear)
    rotation = _independent_rotation(layer, "default")
    s = layer.boft_s["default"].detach().double()
    w, b = base.lin1.weight.double(), base.lin1.bias.double()
    x = torch.randn(5, 16)
    with torch.no_grad():
        want = ((x.double() @ rotation) @ w.T) * s.T + b
        got = layer(x)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_shapes_and_identity_at_init():
    base = conv_net()
    model = get_peft_model(copy.deepcopy(base), BOFTConfig(target_modules=["conv", "head"], boft_block_size=2,
                                                            boft_n_butterfly_factor=2)).eval()
    conv, head = model.base_model.model.conv, model.base_model.model.head
    assert isinstance(conv, Conv2d)
    assert conv.boft_R["default"].shape == (2, 18, 2, 2) and conv.boft_s["default"].shape == (1, 6)
    assert head.boft_R["default"].shape == (2, 4, 2, 2) and head.boft_s["default"].shape == (3, 1)
    x = images()
    torch.testing.assert_close(run(model, x), run(base, x), atol=1e-6, rtol=0)
    assert set(get_peft_model_state_dict(model)) == {
        f"base_model.model.{m}.{p}" for m in ("conv", "head") for p in ("boft_R", "boft_s")
    }


@pytest.mark.parametrize("factors", [1, 2])
def test_merge_equals_unmerged_and_unmerge_restores(factors):
    base = conv_net()
    x = images()
    model = _boft(copy.deepcopy(base), target_modules=["conv", "head"], boft_block_size=2, boft_n_butterfly_factor=factors)
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
    assert isinstance(merged.conv, nn.Conv2d)
    torch.testing.assert_close(run(merged, x), unmerged, atol=1e-6, rtol=1e-5)


def test_conv_forward_is_rotated_scaled_filter():
    base = conv_net()
    model = _boft(copy.deepcopy(base), target_modules=["conv"], boft_block_size=4)
    layer = model.base_model.model.conv
    rotation = _independent_rotation(layer, "default")
    s = layer.boft_s["default"].detach().double().T
    w = base.conv.weight.double().reshape(6, -1)
    weight = ((w @ rotation.T) * s).reshape(base.conv.weight.shape)
    x = images()
    want = torch.nn.functional.conv2d(x.double(), weight, base.conv.bias.double(), padding=1)
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


def test_safe_merge_refuses_non_finite_weights():
    model = _boft(mlp(), target_modules=["lin0"], boft_block_size=4)
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.boft_s["default"][0, 0] = float("inf")
    before = layer.base_layer.weight.detach().clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.base_layer.weight, before) and not layer.merged


def test_several_adapters_disable_delete_and_mixed_batch():
    base = mlp()
    x = torch.randn(5, 8)
    model = _boft(copy.deepcopy(base), target_modules=["lin0"], boft_block_size=4)
    model.add_adapter("other", BOFTConfig(target_modules=["lin0", "lin1"], boft_block_size=2, init_weights=False))
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
    model.set_adapter(["default", "other"])  # both active: rotations compose, scales multiply
    both = run(model, x)
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), both, atol=1e-5, rtol=1e-5)
    model.unmerge_adapter()
    model.delete_adapter("other")
    model.set_adapter("default")
    torch.testing.assert_close(run(model, x), first, atol=1e-6, rtol=1e-5)  # unmerge restores up to rounding


def test_dropout_only_in_training():
    model = _boft(mlp(), target_modules=["lin1"], boft_block_size=2, boft_dropout=0.5)
    x = torch.randn(3, 8)
    assert torch.equal(run(model, x), run(model, x))
    model.train()
    torch.manual_seed(3)
    outs = [model(x) for _ in range(6)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


def test_unsupported_layers_and_grouped_conv_are_refused():
    with pytest.raises(ValueError, match="grouped"):
        get_peft_model(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), BOFTConfig(target_modules=["0"], boft_block_size=2))
    with pytest.raises(TypeError, match="not supported by BOFT"):
        get_peft_model(nn.Sequential(nn.Embedding(10, 8)), BOFTConfig(target_modules=["0"]))
    with pytest.raises(ValueError, match="divisible"):
        get_peft_model(mlp(), BOFTConfig(target_modules=["lin1"], boft_block_size=5))


def test_bias_modes():
    model = _boft(mlp(), target_modules=["lin0"], boft_block_size=4, bias="boft_only")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "base_model.model.lin0.boft_R.default",
        "base_model.model.lin0.boft_s.default",
        "base_model.model.lin0.base_layer.bias",
    }
    assert "base_model.model.lin0.base_layer.bias" in get_peft_model_state_dict(model)
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("x", BOFTConfig(target_modules=["lin1"], bias="all"))


def test_save_load_roundtrip_low_cpu_mem_usage(tmp_path):
    base = conv_net()
    x = images()
    model = _boft(copy.deepcopy(base), target_modules=["conv"], boft_block_size=2, boft_n_butterfly_factor=2)
    expected = run(model, x)
    model.save_pretrained(tmp_path)
    for low_mem in (False, True):
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=low_mem)
        assert torch.equal(run(loaded, x), expected)


@pytest.mark.parametrize("factors", [1, 2])
def test_smoke(factors):
    from peft_core.testing import smoke_test

    smoke_test("boft", boft_n_butterfly_factor=factors)
