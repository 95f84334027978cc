"""What is particular to HiRA: the Hadamard update `W ⊙ (B A)` on each layer type (against an
independent computation), HF's merge rule, HF's rank_pattern behaviour, seeded inits and outputs
equal to Hugging Face PEFT's. The conformance kit checks the rest (see test_conformance.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peft_core import ConfigError, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_model, hf_peft, hf_peft_or_skip

from peft_hira import HiraConfig, HiraConv, HiraEmbedding, HiraLinear

torch.set_num_threads(1)


def _quiet_hf(base, **kwargs):
    return hf_model(base, hf_peft_or_skip().HiraConfig(**kwargs))


def _adapted(tiny_model, **kwargs):
    """The kit's `tiny_model` and a copy adapted by HiRA with a random start (`init_weights=False`)."""
    base = tiny_model.build()
    return base, get_peft_model(copy.deepcopy(base), HiraConfig(init_weights=False, **kwargs))


def test_usable_in_a_mixed_method_model():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), HiraConfig(r=2, target_modules=["lin1"], init_weights=False), mixed=True)
    x = torch.randn(2, 16)
    with torch.no_grad():
        assert not torch.allclose(model(x), base(x))



def test_linear_update_is_the_hadamard_product_with_the_weight():
    base, model = _adapted(models.MLP, r=2, target_modules=["lin1"])
    layer = model.base_model.model.lin1
    assert isinstance(layer, HiraLinear)
    a, b = layer.hira_A["default"], layer.hira_B["default"]
    x = torch.randn(3, 32)
    with torch.no_grad():
        expected = base.lin1(x) + x @ (base.lin1.weight * (b @ a)).T
        torch.testing.assert_close(layer(x), expected)


def test_conv1d_keeps_the_config_flag_and_uses_the_transposed_weight():
    base = models.GPT2.build()
    with pytest.warns(UserWarning, match="Conv1D"):
        model = get_peft_model(copy.deepcopy(base), HiraConfig(r=2, target_modules=["c_attn"], init_weights=False))
    assert model.peft_config["default"].fan_in_fan_out is False  # HF leaves the saved flag as given
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    w = base.transformer.h[0].attn.c_attn.weight  # [in, out]
    a, b = layer.hira_A["default"], layer.hira_B["default"]
    x = torch.randn(2, 3, 32)
    with torch.no_grad():
        expected = base.transformer.h[0].attn.c_attn(x) + x @ (w.T * (b @ a)).T
        torch.testing.assert_close(layer(x), expected)
        assert layer.get_delta_weight("default").shape == w.shape


def test_embedding_update_looks_up_the_modulated_table():
    base, model = _adapted(models.EMBEDDING, r=3, target_modules=["emb"])
    layer = model.base_model.model.emb
    assert isinstance(layer, HiraEmbedding)
    a, b = layer.hira_embedding_A["default"], layer.hira_embedding_B["default"]
    assert a.shape == (3, 128) and b.shape == (16, 3)
    ids = torch.randint(0, 128, (2, 5))
    with torch.no_grad():
        table = base.emb.weight * (b @ a).T
        torch.testing.assert_close(layer(ids), base.emb(ids) + table[ids])


def test_default_embedding_init_is_a_no_op_with_random_b():
    model = get_peft_model(models.EMBEDDING.build(), HiraConfig(r=3, target_modules=["emb"]))
    layer = model.base_model.model.emb
    assert torch.all(layer.hira_embedding_A["default"] == 0) and layer.hira_embedding_B["default"].std() > 0.5


@pytest.mark.parametrize("name", ["conv2d", "pointwise", "conv1d", "conv3d"])
def test_conv_update_convolves_with_the_modulated_kernel(name):
    base, model = _adapted(models.CONV, r=2, target_modules=[name])
    layer = getattr(model.base_model.model, name)
    assert isinstance(layer, HiraConv)
    conv = getattr(base, name)
    a, b = layer.hira_A["default"], layer.hira_B["default"]
    delta = torch.einsum("or,ri...->oi...", b.flatten(1), a)
    x = torch.randn((2, conv.in_channels) + (6,) * (conv.weight.dim() - 2))
    with torch.no_grad():
        expected = conv(x) + conv._conv_forward(x, conv.weight * delta, None)
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_grouped_convolutions_are_refused():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ConfigError, match="groups=2"):
        get_peft_model(net, HiraConfig(r=2, target_modules=["0"]))
    assert isinstance(net[0], nn.Conv2d)


def test_merge_adds_the_original_weight_times_each_update_and_unmerge_restores_it():
    base, model = _adapted(models.MLP, r=2, target_modules=["lin1"])
    model.add_adapter("b", HiraConfig(r=3, target_modules=["lin1"], init_weights=False))
    layer = model.base_model.model.lin1
    w0 = base.lin1.weight.detach()
    with torch.no_grad():
        expected = w0 + w0 * layer.get_delta_weight("default") + w0 * layer.get_delta_weight("b")
        layer.merge(adapter_names=["default", "b"])
        torch.testing.assert_close(layer.get_base_layer().weight, expected)
        layer.unmerge()
    assert torch.equal(layer.get_base_layer().weight, w0)


def test_rank_pattern_applies_only_to_a_layers_later_adapters_as_in_hugging_face():
    kwargs = dict(r=4, target_modules=["lin1", "lin2"], rank_pattern={"lin1": 2})
    with pytest.warns(UserWarning, match="rank_pattern"):
        ours = get_peft_model(models.MLP.build(), HiraConfig(**kwargs))
    ours.add_adapter("b", HiraConfig(**kwargs))
    theirs = _quiet_hf(models.MLP.build(), **kwargs)
    theirs.add_adapter("b", hf_peft().HiraConfig(**kwargs))
    for name in ("default", "b"):
        for mod in ("lin1", "lin2"):
            got = getattr(ours.base_model.model, mod).hira_A[name].shape
            assert got == getattr(theirs.base_model.model, mod).hira_A[name].shape
    assert ours.base_model.model.lin1.hira_A["default"].shape[0] == 4
    assert ours.base_model.model.lin1.hira_A["b"].shape[0] == 2


@pytest.mark.parametrize("init", [True, "gaussian", False])
def test_seeded_init_and_outputs_match_hugging_face(init):
    kwargs = dict(r=2, target_modules=["conv2d", "pointwise", "conv1d", "conv3d", "head"], init_weights=init)
    torch.manual_seed(5)
    ours = get_peft_model(models.CONV.build(), HiraConfig(**kwargs))
    torch.manual_seed(5)
    theirs = _quiet_hf(models.CONV.build(), **kwargs)
    ours_state = {k: v for k, v in ours.state_dict().items() if ".hira_" in k}
    theirs_state = {k: v for k, v in theirs.state_dict().items() if ".hira_" in k}
    assert ours_state.keys() == theirs_state.keys()
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in ours_state)
    with torch.no_grad():
        for p in ours.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if ".hira_" in k}, strict=False)
    x = models.CONV.make_inputs()["x"]
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), theirs.eval()(x))
        ours_merged, theirs_merged = ours.merge_and_unload(), theirs.merge_and_unload()
        for name in ("conv2d", "pointwise", "conv1d", "conv3d", "head"):
            assert torch.equal(getattr(ours_merged, name).weight, getattr(theirs_merged, name).weight)
