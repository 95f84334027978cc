"""HRA layers: forward math against an independent computation, the symmetric init, composed adapters,
bias modes, refusals (a safe merge of non-finite weights: core's generic check, tested there).

Adapters, disabling, merging, mixed batches, save/load and dtypes are the conformance kit's checks
(`tests/test_conformance.py`); these tests cover what is specific to HRA.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models
from peft_core.testing.stacking import assert_active_adapters_compose
from torch import nn

from peft_core import get_peft_model
from peft_core.testing.models import forward_output
from peft_core.testing.trainable import assert_trains_and_saves
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
    base = models.MLP.build()
    layer = _hra(models.MLP.build(), target_modules=["lin1"], r=3).base_model.model.lin1
    assert isinstance(layer, HRALinear) and layer.hra_u["default"].shape == (32, 3)
    h = _reflections(layer.hra_u["default"].detach())
    x = torch.randn(4, 32)
    want = x.double() @ (base.lin1.weight.double() @ h).T + base.lin1.bias.double()
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


def test_conv_forward_matches_independent_math():
    base = models.CONV.build()
    layer = _hra(models.CONV.build(), target_modules=["conv2d"], r=4, apply_GS=True).base_model.model.conv2d
    assert isinstance(layer, HRAConv2d) and layer.hra_u["default"].shape == (27, 4)
    q, _ = torch.linalg.qr(layer.hra_u["default"].detach().double())
    h = torch.eye(27, dtype=torch.float64) - 2 * q @ q.T
    weight = (base.conv2d.weight.double().reshape(8, -1) @ h).reshape(base.conv2d.weight.shape)
    x = models.CONV.make_inputs()["x"]
    want = torch.nn.functional.conv2d(x.double(), weight, base.conv2d.bias.double(), padding=1)
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


def test_default_init_pairs_reflections_for_even_r_and_warns_for_odd_r():
    x = torch.randn(4, 16)
    model = get_peft_model(models.MLP.build(), HRAConfig(target_modules=["lin0", "lin1"], r=4)).eval()
    u = model.base_model.model.lin0.hra_u["default"]
    assert torch.equal(u[:, 0], u[:, 1]) and not torch.equal(u[:, 1], u[:, 2])
    with pytest.warns(UserWarning, match="odd"):
        odd = get_peft_model(models.MLP.build(), HRAConfig(target_modules=["lin1"], r=3)).eval()
    assert not torch.allclose(forward_output(odd, x), forward_output(models.MLP.build(), x))


def test_two_active_adapters_chain_and_merge():
    """Reflections chain: W H_default H_other."""
    model = _hra(models.MLP.build(), target_modules=["lin0"], r=2)
    model.add_adapter("other", HRAConfig(target_modules=["lin0", "lin1"], r=4, init_weights=False))
    assert_active_adapters_compose(model, ["default", "other"], models.MLP.make_inputs())


def test_unsupported_layers_and_bad_rank_are_refused():
    with pytest.raises(ValueError, match="grouped"):
        get_peft_model(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), HRAConfig(target_modules=["0"]))
    with pytest.raises(TypeError, match="not supported by HRA"):
        get_peft_model(nn.Sequential(nn.Embedding(10, 8)), HRAConfig(target_modules=["0"]))
    with pytest.raises(ValueError, match="positive"):
        get_peft_model(models.MLP.build(), HRAConfig(target_modules=["lin0"], r=0))


def test_bias_modes():
    model = _hra(models.MLP.build(), target_modules=["lin0"], r=2, bias="hra_only")
    assert_trains_and_saves(
        model,
        trainable={"base_model.model.lin0.hra_u.default", "base_model.model.lin0.base_layer.bias"},
        saved={"base_model.model.lin0.hra_u", "base_model.model.lin0.base_layer.bias"},
    )
