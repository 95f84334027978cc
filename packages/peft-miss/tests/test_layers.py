"""MiSS layers: the three variants' math against explicit formulas, the zero start of `bat` and `mini`,
composed adapters, dropout, bias modes, refusals.

Adapters, disabling, merging, mixed batches, save/load and dtypes are the conformance kit's checks
(`tests/test_conformance.py`, both suites); these tests cover what is specific to MiSS.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models, perturb
from peft_core.testing.stacking import assert_active_adapters_compose
from torch import nn

from peft_core import get_peft_model
from peft_core.testing.models import assert_dropout_only_in_training, forward_output
from peft_core.testing.trainable import assert_trains_and_saves
from peft_miss import MissConfig
from peft_miss.layer import MissLinear


def _miss(model, trained=True, **kwargs):
    model = get_peft_model(model, MissConfig(**kwargs)).eval()
    if trained:
        perturb(model, 0.1, seed=7)
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
    base = models.MLP.build()
    layer = _miss(models.MLP.build(), target_modules=["lin1"], r=r, mini_r=4, init_weights=variant).base_model.model.lin1
    assert isinstance(layer, MissLinear)
    block = layer.miss_block["default"].detach().double()
    assert block.shape == ((r, 32) if variant is True else (r, 4))
    delta = _dense_delta(block, 32, 32, mini_r=4 if variant == "mini" else None)
    x = torch.randn(3, 32)
    want = x.double() @ (base.lin1.weight.double() + delta).T + base.lin1.bias.double()
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.get_delta_weight("default").double(), delta)


def test_bat_forward_matches_blockwise_formula():
    base = models.MLP.build()
    layer = _miss(models.MLP.build(), target_modules=["lin1"], r=4, init_weights="bat").base_model.model.lin1
    block = layer.miss_block["default"].detach().double()
    assert block.shape == (8, 4, 4)  # out 32 / r
    w = base.lin1.weight.detach().double()
    want_w = w.clone()
    for h in range(8):
        for g in range(8):
            wb = w[h * 4 : (h + 1) * 4, g * 4 : (g + 1) * 4]
            want_w[h * 4 : (h + 1) * 4, g * 4 : (g + 1) * 4] = wb + wb @ block[h] + block[h]
    x = torch.randn(3, 32)
    want = x.double() @ want_w.T + base.lin1.bias.double()
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["bat", "mini"])
def test_bat_and_mini_start_as_a_no_op(variant):
    model = _miss(models.MLP.build(), trained=False, target_modules=["lin0", "lin1"], r=4, mini_r=2, init_weights=variant)
    x = torch.randn(3, 16)
    assert torch.equal(forward_output(model, x), forward_output(models.MLP.build(), x))


def test_balanced_and_bat_adapters_apply_in_turn():
    """W + ΔW first, then the 'bat' transform of that."""
    model = _miss(models.MLP.build(), target_modules=["lin0", "lin1"], r=4)
    model.add_adapter("bat", MissConfig(target_modules=["lin0", "lin1"], r=4, init_weights="bat"))
    model.set_adapter("bat")
    perturb(model, 0.1, seed=8)
    assert_active_adapters_compose(model, ["default", "bat"], models.MLP.make_inputs())


def test_dropout_only_in_training():
    model = _miss(models.MLP.build(), target_modules=["lin1"], r=4, miss_dropout=0.5)
    assert_dropout_only_in_training(model, torch.randn(3, 16), draws=2)


def test_unsupported_layers_and_bad_shapes_are_refused():
    with pytest.raises(TypeError, match="not supported by MiSS"):
        get_peft_model(nn.Sequential(nn.Conv2d(4, 4, 3)), MissConfig(target_modules=["0"], r=2))
    with pytest.raises(ValueError, match="less than or equal"):
        get_peft_model(models.MLP.build(), MissConfig(target_modules=["lin0"], r=64))
    with pytest.raises(ValueError, match="bat"):
        get_peft_model(models.MLP.build(), MissConfig(target_modules=["lin1"], r=5, init_weights="bat"))
    with pytest.raises(ValueError, match="mini_r"):
        get_peft_model(models.MLP.build(), MissConfig(target_modules=["lin1"], r=4, mini_r=5, init_weights="mini"))


def test_bias_modes():
    model = _miss(models.MLP.build(), target_modules=["lin0"], r=4, bias="MiSS_only")
    assert_trains_and_saves(
        model,
        trainable={"base_model.model.lin0.miss_block.default", "base_model.model.lin0.base_layer.bias"},
        saved={"base_model.model.lin0.miss_block", "base_model.model.lin0.base_layer.bias"},
    )
