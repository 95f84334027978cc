"""BOFT layers: forward math against an independent computation, shapes, composed adapters, dropout,
bias modes, refusals.

Adapters, disabling, merging, mixed batches, save/load (`low_cpu_mem_usage` too) and dtypes are the
conformance kit's checks (`tests/test_conformance.py`); these tests cover what is specific to BOFT.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models
from peft_core.testing.stacking import assert_active_adapters_compose
from torch import nn

from peft_boft import BOFTConfig
from peft_boft.layer import Conv2d, Linear
from peft_core import get_peft_model, get_peft_model_state_dict
from peft_core.testing.models import assert_dropout_only_in_training, forward_output
from peft_core.testing.trainable import assert_trains_and_saves


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
    base = models.MLP.build()
    layer = _boft(models.MLP.build(), target_modules=["lin0", "lin1"], **options).base_model.model.lin1
    assert isinstance(layer, Linear)
    rotation = _independent_rotation(layer, "default")
    s = layer.boft_s["default"].detach().double()
    w, b = base.lin1.weight.double(), base.lin1.bias.double()
    x = torch.randn(5, 32)
    with torch.no_grad():
        want = ((x.double() @ rotation) @ w.T) * s.T + b
        got = layer(x)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_conv_forward_is_rotated_scaled_filter():
    base = models.CONV.build()
    layer = _boft(models.CONV.build(), target_modules=["conv2d"], boft_block_size=3).base_model.model.conv2d
    assert isinstance(layer, Conv2d)
    rotation = _independent_rotation(layer, "default")
    s = layer.boft_s["default"].detach().double().T
    w = base.conv2d.weight.double().reshape(8, -1)
    weight = ((w @ rotation.T) * s).reshape(base.conv2d.weight.shape)
    x = models.CONV.make_inputs()["x"]
    want = torch.nn.functional.conv2d(x.double(), weight, base.conv2d.bias.double(), padding=1)
    torch.testing.assert_close(layer(x).double(), want, atol=1e-5, rtol=1e-5)


def test_shapes_follow_hf_layout():
    model = get_peft_model(
        models.CONV.build(), BOFTConfig(target_modules=["pointwise", "head"], boft_block_size=2, boft_n_butterfly_factor=2)
    )
    conv, head = model.base_model.model.pointwise, model.base_model.model.head
    assert conv.boft_R["default"].shape == (2, 4, 2, 2) and conv.boft_s["default"].shape == (1, 8)  # conv scale: [1, out]
    assert head.boft_R["default"].shape == (2, 160, 2, 2) and head.boft_s["default"].shape == (8, 1)
    assert set(get_peft_model_state_dict(model)) == {
        f"base_model.model.{m}.{p}" for m in ("pointwise", "head") for p in ("boft_R", "boft_s")
    }


def test_two_active_adapters_compose_and_merge():
    """Rotations compose, scales multiply."""
    model = _boft(models.MLP.build(), target_modules=["lin0"], boft_block_size=4)
    model.add_adapter("other", BOFTConfig(target_modules=["lin0", "lin1"], boft_block_size=2, init_weights=False))
    assert_active_adapters_compose(model, ["default", "other"], models.MLP.make_inputs())


def test_dropout_only_in_training():
    model = _boft(models.MLP.build(), target_modules=["lin1"], boft_block_size=2, boft_dropout=0.5)
    torch.manual_seed(3)
    assert_dropout_only_in_training(model, torch.randn(3, 16))


def test_unsupported_layers_and_grouped_conv_are_refused():
    with pytest.raises(ValueError, match="grouped"):
        get_peft_model(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), BOFTConfig(target_modules=["0"], boft_block_size=2))
    with pytest.raises(TypeError, match="not supported by BOFT"):
        get_peft_model(nn.Sequential(nn.Embedding(10, 8)), BOFTConfig(target_modules=["0"]))
    with pytest.raises(ValueError, match="divisible"):
        get_peft_model(models.MLP.build(), BOFTConfig(target_modules=["lin1"], boft_block_size=5))


def test_bias_modes():
    model = _boft(models.MLP.build(), target_modules=["lin0"], boft_block_size=4, bias="boft_only")
    assert_trains_and_saves(
        model,
        trainable={
            "base_model.model.lin0.boft_R.default",
            "base_model.model.lin0.boft_s.default",
            "base_model.model.lin0.base_layer.bias",
        },
        saved_includes={"base_model.model.lin0.base_layer.bias"},
    )
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("x", BOFTConfig(target_modules=["lin1"], bias="all"))
