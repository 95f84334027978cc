"""OFT layers: forward math against an independent computation, saved shapes, COFT, bias modes, refusals.

Adapters, disabling, merging, mixed batches, save/load and dtypes are the conformance kit's checks
(`tests/test_conformance.py`); these tests cover what is specific to OFT.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models
from peft_core.testing.hf import saved_tensor_specs
from torch import nn

from peft_core import get_peft_model, get_peft_model_state_dict
from peft_core.testing.models import forward_output
from peft_core.testing.trainable import assert_trains_and_saves
from peft_oft import OFTConfig
from peft_oft.layer import Conv2d, Embedding, Linear


def _oft(model, **kwargs):
    kwargs.setdefault("init_weights", False)
    return get_peft_model(model, OFTConfig(**kwargs)).eval()


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
    base = models.MLP.build()
    layer = _oft(models.MLP.build(), target_modules=["lin0"], **options).base_model.model.lin0
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
    x = torch.randn(5, 16, dtype=torch.float64)
    lin = base.lin0.double()
    with torch.no_grad():
        got = layer(x.float())
        want = (x @ torch.block_diag(*blocks.unbind(0))) @ lin.weight.T + lin.bias
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_saved_keys_and_shapes(tmp_path):
    """`[n_blocks, b(b-1)/2]` per layer; embeddings use `oft_embedding_R` (HF's layout)."""
    model = get_peft_model(models.LLAMA.build(), OFTConfig(target_modules=["q_proj", "down_proj", "embed_tokens"], oft_block_size=8))
    model.save_pretrained(tmp_path)
    shapes = saved_tensor_specs(tmp_path)
    prefix = "base_model.model.model."
    assert shapes[prefix + "layers.0.self_attn.q_proj.oft_R.weight"] == ((4, 28), torch.float32)  # 32 inputs, blocks of 8
    assert shapes[prefix + "layers.0.mlp.down_proj.oft_R.weight"] == ((8, 28), torch.float32)  # 64 inputs
    assert shapes[prefix + "embed_tokens.oft_embedding_R.weight"] == ((4, 28), torch.float32)
    assert shapes[prefix + "embed_tokens.base_layer.weight"] == ((128, 32), torch.float32)  # HF saves embedding bases
    conv = get_peft_model(models.CONV.build(), OFTConfig(target_modules=["conv2d"], r=3, oft_block_size=0))
    assert isinstance(conv.base_model.model.conv2d, Conv2d)
    assert conv.base_model.model.conv2d.oft_R["default"].weight.shape == (3, 36)  # 3*3*3 = 27 = 3 blocks of 9
    with pytest.warns(UserWarning, match=r"Adjusted `r` to \(2\)"):  # 3 doesn't divide pointwise's 8 inputs (tie: lower)
        conv.add_adapter("adjusted", OFTConfig(target_modules=["pointwise"], r=3, oft_block_size=0))


def test_coft_merge_equals_unmerged_and_unmerge_restores():
    model = _oft(models.MLP.build(), target_modules=["lin0", "lin1"], oft_block_size=4, coft=True, eps=0.05)
    x = torch.randn(6, 16)
    unmerged = forward_output(model, x)
    assert not torch.allclose(unmerged, forward_output(models.MLP.build(), x))
    before = model.base_model.model.lin1.base_layer.weight.detach().clone()
    model.merge_adapter()
    torch.testing.assert_close(forward_output(model, x), unmerged, atol=1e-6, rtol=1e-5)
    model.unmerge_adapter()
    torch.testing.assert_close(model.base_model.model.lin1.base_layer.weight, before, atol=1e-6, rtol=1e-5)


def test_coft_projects_parameters_in_place():
    model = _oft(models.MLP.build(), target_modules=["lin0"], oft_block_size=4, coft=True, eps=1e-3)
    weight = model.base_model.model.lin0.oft_R["default"].weight
    forward_output(model, torch.randn(2, 16))
    rows, cols = torch.triu_indices(4, 4, 1)
    for block in weight.detach():
        q = torch.zeros(4, 4)
        q[rows, cols] = block
        q = q - q.T
        assert q.norm() <= 1e-3 / 2 + 1e-7  # radius eps / sqrt(4 blocks)


def test_conv2d_forward_is_a_rotated_filter():
    base = models.CONV.build()
    model = _oft(models.CONV.build(), target_modules=["conv2d"], r=3, oft_block_size=0)
    layer = model.base_model.model.conv2d
    full = layer.oft_R["default"].matrix().detach()
    w = base.conv2d.weight.detach().reshape(8, -1)
    rotated = (w @ full.T).reshape_as(base.conv2d.weight)
    x = models.CONV.make_inputs()["x"]
    want = torch.nn.functional.conv2d(x, rotated, base.conv2d.bias, padding=1)
    torch.testing.assert_close(layer(x), want, atol=1e-6, rtol=1e-5)


def test_unsupported_layers_are_refused():
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="grouped"):
        get_peft_model(grouped, OFTConfig(target_modules=["0"], oft_block_size=2))
    with pytest.raises(TypeError, match="not supported by OFT"):
        get_peft_model(nn.Sequential(nn.LayerNorm(8)), OFTConfig(target_modules=["0"], oft_block_size=2))
    only = r"only torch.nn.Linear, torch.nn.Conv2d and torch.nn.Embedding are. transformers' Conv1D \(GPT-2\) is not"
    with pytest.raises(TypeError, match=only):
        get_peft_model(models.GPT2.build(), OFTConfig(target_modules=["c_attn"], oft_block_size=8))


def test_bias_modes():
    model = _oft(models.MLP.build(), target_modules=["lin0"], oft_block_size=4, bias="oft_only")
    assert_trains_and_saves(
        model,
        trainable={"base_model.model.lin0.oft_R.default.weight", "base_model.model.lin0.base_layer.bias"},
        saved={"base_model.model.lin0.oft_R.weight", "base_model.model.lin0.base_layer.bias"},
    )
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("x", OFTConfig(target_modules=["lin1"], bias="all"))

    model = _oft(models.MLP.build(), target_modules=["lin0"], oft_block_size=4, bias="all")
    saved = set(get_peft_model_state_dict(model))
    assert {"base_model.model.lin1.bias", "base_model.model.lin2.bias", "base_model.model.lin0.base_layer.bias"} <= saved


def test_module_dropout_warns_that_it_has_no_effect():
    with pytest.warns(UserWarning, match="module_dropout"):
        model = _oft(models.MLP.build(), target_modules=["lin0"], oft_block_size=4, module_dropout=0.5)
    model.train()
    x = torch.randn(2, 16)
    assert torch.equal(model(x), model(x))


def test_embedding_rotates_vectors():
    base = models.EMBEDDING.build()
    model = _oft(models.EMBEDDING.build(), target_modules=["emb"], oft_block_size=4)
    layer = model.base_model.model.emb
    assert isinstance(layer, Embedding) and not layer.oft_R and layer.oft_embedding_R["default"].weight.shape == (4, 6)
    ids = models.EMBEDDING.make_inputs()["input_ids"]
    full = layer.oft_embedding_R["default"].matrix().detach()
    torch.testing.assert_close(layer(ids), base.emb(ids) @ full)
    assert set(get_peft_model_state_dict(model)) == {"base_model.model.emb.oft_embedding_R.weight"}
