"""OFT layers: forward math, merge/unmerge, several adapters, disabling, mixed batches, bias modes."""

from __future__ import annotations

import copy

import pytest
import torch
from _oft_test_models import conv_net, images, mlp, run
from torch import nn

from peft_core import PeftModel, get_peft_model
from peft_oft import OFTConfig
from peft_oft.layer import Conv2d, Embedding, Linear


def _oft(model, **kwargs):
    kwargs.setdefault("init_weights", False)
    return get_peft_model(model, OFTConfig(**kwargs)).eval()


def _expected_linear(layer: nn.Linear, rotation_blocks: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    full = torch.block_diag(*rotation_blocks.unbind(0))
    return (x @ full) @ layer.weight.T + layer.bias


@pytest.mark.parametrize(
    "options",
    [
        {"oft_block_size": 4},
        {"r": 2, "oft_block_size": 0},
        {"oft_block_size": 4, "use_cayley_neumann": False},
        {"oft_block_size": 4, "num_cayley_neumann_terms": 3},
        {"oft_block_size": 2, "block_share": True},
    ],
)
def test_linear_forward_matches_independent_math(options):
    base = mlp()
    model = _oft(copy.deepcopy(base), target_modules=["lin0"], **options)
    layer = model.base_model.model.lin0
    assert isinstance(layer, Linear)
    rot = layer.oft_R["default"]
    q = rot.weight.detach().double()
    b = rot.block_size
    rows, cols = torch.triu_indices(b, b, 1)
    skew = torch.zeros(q.shape[0], b, b, dtype=torch.float64)
    skew[:, rows, cols] = q
    skew = skew - skew.transpose(-2, -1)
    eye = torch.eye(b, dtype=torch.float64).expand_as(skew)
    if options.get("use_cayley_neumann", True):
        k = options.get("num_cayley_neumann_terms", 5)
        blocks = eye + 2 * skew + 2 * skew @ skew + (skew @ skew @ skew if k in (3, 4) else 2 * skew @ skew @ skew)
        if k == 5:
            blocks = blocks + torch.linalg.matrix_power(skew, 4)
    else:
        blocks = torch.linalg.solve(eye + skew, eye - skew, left=False)
    if options.get("block_share"):
        blocks = blocks.repeat(layer.r["default"], 1, 1)
    x = torch.randn(5, 8)
    with torch.no_grad():
        got = layer(x)
        want = _expected_linear(base.lin0.double(), blocks, x.double())
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_default_init_is_identity_and_shapes():
    base = mlp()
    model = get_peft_model(copy.deepcopy(base), OFTConfig(target_modules=["lin0", "lin1"], oft_block_size=4)).eval()
    x = torch.randn(4, 8)
    assert torch.equal(run(model, x), run(base, x))
    assert model.base_model.model.lin0.oft_R["default"].weight.shape == (2, 6)  # 8 = 2 blocks of 4
    assert model.base_model.model.lin1.oft_R["default"].weight.shape == (4, 6)


@pytest.mark.parametrize("options", [{}, {"use_cayley_neumann": False}, {"coft": True, "eps": 0.05}, {"block_share": True}])
def test_merge_equals_unmerged_and_unmerge_restores(options):
    base = mlp()
    model = _oft(copy.deepcopy(base), target_modules=["lin0", "lin1"], oft_block_size=4, **options)
    x = torch.randn(6, 8)
    unmerged = run(model, x)
    assert not torch.allclose(unmerged, run(base, x))
    before = model.base_model.model.lin1.base_layer.weight.detach().clone()
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), unmerged, atol=1e-6, rtol=1e-5)
    model.unmerge_adapter()
    torch.testing.assert_close(model.base_model.model.lin1.base_layer.weight, before, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(run(model, x), unmerged, atol=1e-6, rtol=1e-5)
    merged = copy.deepcopy(model).merge_and_unload()
    assert isinstance(merged.lin0, nn.Linear)
    torch.testing.assert_close(run(merged, x), unmerged, atol=1e-6, rtol=1e-5)


def test_safe_merge_refuses_non_finite_weights():
    model = _oft(mlp(), target_modules=["lin0"], oft_block_size=4)
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.oft_R["default"].weight[0, 0] = float("nan")
    before = layer.base_layer.weight.detach().clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.base_layer.weight, before)
    assert not layer.merged


def test_coft_projects_parameters_in_place():
    model = _oft(mlp(), target_modules=["lin0"], oft_block_size=4, coft=True, eps=1e-3)
    weight = model.base_model.model.lin0.oft_R["default"].weight
    run(model, torch.randn(2, 8))
    rows, cols = torch.triu_indices(4, 4, 1)
    for block in weight.detach():
        q = torch.zeros(4, 4)
        q[rows, cols] = block
        q = q - q.T
        assert q.norm() <= 1e-3 / 2**0.5 + 1e-7


def test_conv2d_identity_at_init_and_merge_equals_unmerged():
    base = conv_net()
    x = images()
    model = get_peft_model(copy.deepcopy(base), OFTConfig(target_modules=["conv", "pw"], oft_block_size=4)).eval()
    assert isinstance(model.base_model.model.conv, Conv2d)
    assert model.base_model.model.conv.oft_R["default"].weight.shape == (9, 6)  # 4*3*3 = 36 = 9 blocks of 4
    assert torch.equal(run(model, x), run(base, x))

    model = _oft(copy.deepcopy(base), target_modules=["conv", "pw"], oft_block_size=4)
    unmerged = run(model, x)
    assert not torch.allclose(unmerged, run(base, x))
    weight = model.base_model.model.conv.base_layer.weight.detach().clone()
    model.merge_adapter()
    torch.testing.assert_close(run(model, x), unmerged, atol=1e-6, rtol=1e-5)
    model.unmerge_adapter()
    torch.testing.assert_close(model.base_model.model.conv.base_layer.weight, weight, atol=1e-6, rtol=1e-5)


def test_conv2d_forward_is_a_rotated_filter():
    base = conv_net()
    model = _oft(copy.deepcopy(base), target_modules=["conv"], r=4, oft_block_size=0)
    layer = model.base_model.model.conv
    full = layer.oft_R["default"].matrix().detach()
    w = base.conv.weight.detach().reshape(6, -1)
    rotated = (w @ full.T).reshape_as(base.conv.weight)
    x = images()
    want = torch.nn.functional.conv2d(x, rotated, base.conv.bias, padding=1)
    torch.testing.assert_close(layer(x), want, atol=1e-6, rtol=1e-5)


def test_grouped_conv_and_unsupported_layers_are_refused():
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="grouped"):
        get_peft_model(grouped, OFTConfig(target_modules=["0"], oft_block_size=2))
    with pytest.raises(TypeError, match="not supported by OFT"):
        get_peft_model(nn.Sequential(nn.LayerNorm(8)), OFTConfig(target_modules=["0"], oft_block_size=2))


def test_several_adapters_disable_and_delete():
    base = mlp()
    x = torch.randn(3, 8)
    model = _oft(copy.deepcopy(base), target_modules=["lin0"], oft_block_size=4)
    model.add_adapter("other", OFTConfig(target_modules=["lin0", "lin1"], oft_block_size=2, init_weights=False))
    first = run(model, x)
    model.set_adapter("other")
    second = run(model, x)
    assert not torch.allclose(first, second)
    assert model.base_model.model.lin1.active_adapters == ["other"]
    with model.disable_adapter():
        assert torch.equal(run(model, x), run(base, x))
    model.set_adapter("default")
    assert torch.equal(run(model, x), first)
    model.delete_adapter("other")
    assert "other" not in model.base_model.model.lin0.oft_R
    assert torch.equal(run(model, x), first)


def test_mixed_batch_matches_per_adapter_forwards():
    base = conv_net()
    x = images(batch=5)
    model = _oft(copy.deepcopy(base), target_modules=["conv", "head"], oft_block_size=4)
    model.add_adapter("b", OFTConfig(target_modules=["pw"], oft_block_size=2, init_weights=False))
    names = ["b", "default", "__base__", "b", "default"]
    got = model(x, adapter_names=names)
    expected = []
    for i, name in enumerate(names):
        if name == "__base__":
            expected.append(run(base, x[i : i + 1]))
        else:
            model.set_adapter(name)
            expected.append(run(model, x[i : i + 1]))
    torch.testing.assert_close(got, torch.cat(expected), atol=1e-6, rtol=1e-5)


def test_bias_modes():
    model = _oft(mlp(), target_modules=["lin0"], oft_block_size=4, bias="oft_only")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"base_model.model.lin0.oft_R.default.weight", "base_model.model.lin0.base_layer.bias"}
    from peft_core import get_peft_model_state_dict

    assert set(get_peft_model_state_dict(model)) == {
        "base_model.model.lin0.oft_R.weight",
        "base_model.model.lin0.base_layer.bias",
    }
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("x", OFTConfig(target_modules=["lin1"], bias="all"))

    model = _oft(mlp(), target_modules=["lin0"], oft_block_size=4, bias="all")
    saved = set(get_peft_model_state_dict(model))
    assert {"base_model.model.lin1.bias", "base_model.model.head.bias", "base_model.model.lin0.base_layer.bias"} <= saved


def test_module_dropout_warns_that_it_has_no_effect():
    with pytest.warns(UserWarning, match="module_dropout"):
        model = _oft(mlp(), target_modules=["lin0"], oft_block_size=4, module_dropout=0.5)
    model.train()
    x = torch.randn(2, 8)
    assert torch.equal(model(x), model(x))


def test_save_load_roundtrip_low_cpu_mem_usage(tmp_path):
    base = conv_net()
    x = images()
    model = _oft(copy.deepcopy(base), target_modules=["conv", "head"], oft_block_size=4)
    expected = run(model, x)
    model.save_pretrained(tmp_path)
    for low_mem in (False, True):
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=low_mem)
        assert torch.equal(run(loaded, x), expected)


def test_smoke():
    from peft_core.testing import smoke_test

    with pytest.warns(UserWarning, match="Adjusted"):
        smoke_test("oft")


def test_embedding_rotates_vectors_and_merges():
    base = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 3)).eval()
    model = _oft(copy.deepcopy(base), target_modules=["0"], oft_block_size=4)
    layer = model.base_model.model[0]
    assert isinstance(layer, Embedding) and not layer.oft_R and layer.oft_embedding_R["default"].weight.shape == (2, 6)
    ids = torch.tensor([[1, 4, 9], [0, 0, 3]])
    full = layer.oft_embedding_R["default"].matrix().detach()
    torch.testing.assert_close(layer(ids), base[0](ids) @ full)
    unmerged = run(model, ids)
    model.merge_adapter()
    torch.testing.assert_close(run(model, ids), unmerged, atol=1e-6, rtol=1e-5)
    model.unmerge_adapter()
    torch.testing.assert_close(layer.base_layer.weight, base[0].weight, atol=1e-6, rtol=1e-5)
    from peft_core import get_peft_model_state_dict

    assert set(get_peft_model_state_dict(model)) == {"base_model.model.0.oft_embedding_R.weight"}
    mixed = model(ids, adapter_names=["__base__", "default"])
    torch.testing.assert_close(mixed, torch.cat([run(base, ids[:1]), unmerged[1:]]), atol=1e-6, rtol=1e-5)
