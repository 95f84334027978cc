"""GraLoRA's own behaviour: the k x k block grid, its rank, the hybrid LoRA part, shapes and refusals."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peft_core import ConfigError, get_peft_model
from peft_gralora import GraloraConfig, GraloraLinear


def _layer(**overrides) -> tuple[nn.Linear, GraloraLinear]:
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(12, 8))
    config = GraloraConfig(**{"r": 4, "gralora_k": 2, "alpha": 8, "target_modules": ["0"], "init_weights": False, **overrides})
    return copy.deepcopy(base[0]), get_peft_model(base, config).base_model.model[0]


@pytest.mark.parametrize("k,r", [(2, 4), (4, 8), (1, 3)])
def test_each_block_is_its_own_low_rank_product(k, r):
    torch.manual_seed(k)
    layer = get_peft_model(
        nn.Sequential(nn.Linear(12, 8)), GraloraConfig(r=r, gralora_k=k, alpha=r, target_modules=["0"], init_weights=False)
    ).base_model.model[0]
    a, b = layer.gralora_A["default"].detach(), layer.gralora_B["default"].detach()  # [k, in/k, r], [k, r, out/k]
    assert a.shape == (k, 12 // k, r) and b.shape == (k, r, 8 // k)
    sub = r // k
    expected = torch.zeros(8, 12)
    for j in range(k):  # output block
        for i in range(k):  # input block: A_i's j-th rank group meets B_j's i-th rank group
            block = a[i][:, j * sub : (j + 1) * sub] @ b[j][i * sub : (i + 1) * sub, :]  # [in/k, out/k]
            expected[j * (8 // k) : (j + 1) * (8 // k), i * (12 // k) : (i + 1) * (12 // k)] = block.T
    torch.testing.assert_close(layer.get_delta_weight("default"), expected, atol=1e-5, rtol=1e-5)
    x = torch.randn(3, 5, 12)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer.base_layer(x) + x @ expected.T, atol=1e-5, rtol=1e-5)


def test_grid_reaches_rank_r_times_k():
    _, layer = _layer(r=2, gralora_k=2, alpha=2)
    assert torch.linalg.matrix_rank(layer.get_delta_weight("default")) == 4  # LoRA at r=2 would stop at 2


def test_hybrid_part_adds_a_plain_lora_and_shares_the_scaling():
    base, layer = _layer(hybrid_r=2, alpha=12)
    assert layer.scaling["default"] == 12 / (4 + 2)
    general_a, general_b = layer.gralora_A_general["default"].weight, layer.gralora_B_general["default"].weight
    assert general_a.shape == (2, 12) and general_b.shape == (8, 2)
    grid_only = copy.deepcopy(layer)
    grid_only.hybrid_r["default"] = 0
    with torch.no_grad():
        expected = grid_only.get_delta_weight("default") + (general_b @ general_a) * 2.0
    torch.testing.assert_close(layer.get_delta_weight("default"), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("shape", [(6, 12), (2, 3, 4, 12)])
def test_inputs_of_any_rank(shape):
    _, layer = _layer()
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = layer.base_layer(x) + x @ layer.get_delta_weight("default").T
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_fresh_adapter_is_a_no_op():
    base, layer = _layer(init_weights=True, hybrid_r=1)
    x = torch.randn(2, 12)
    with torch.no_grad():
        assert torch.equal(layer(x), base(x))


def test_refusals():
    with pytest.raises(ConfigError, match="divisible by gralora_k"):
        GraloraConfig(r=5, gralora_k=2)
    with pytest.raises(ConfigError, match="gralora_k"):
        GraloraConfig(gralora_k=0)
    with pytest.raises(ConfigError, match="hybrid_r"):
        GraloraConfig(hybrid_r=-1)
    base = nn.Sequential(nn.Linear(12, 9))
    with pytest.raises(ConfigError, match="'0'.*gralora_k=2 must divide"):
        get_peft_model(base, GraloraConfig(r=4, target_modules=["0"]))
    assert isinstance(base[0], nn.Linear)
