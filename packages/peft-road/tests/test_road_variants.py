"""RoAd's own behaviour: the three variants, the pairing inside groups, group_size checks, merge by R."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peft_core import ConfigError, get_peft_model
from peft_road import RoadConfig, RoadLinear, rotate, rotation_matrix


def _reference_rotation(variant: str, group: int, theta: torch.Tensor, alpha: torch.Tensor, y: torch.Tensor):
    """Straight from the paper's definition, one pair at a time (no vectorisation shared with the package)."""
    out = y.clone()
    half = group // 2
    for start in range(0, y.shape[-1], group):
        for i in range(half):
            a, b = start + i, start + i + half
            if variant == "road_1":
                k = start // 2 + i
                c1 = c2 = alpha[k] * torch.cos(theta[k])
                s1 = s2 = alpha[k] * torch.sin(theta[k])
            elif variant == "road_2":
                c1, s1 = alpha[a] * torch.cos(theta[a]), alpha[a] * torch.sin(theta[a])
                c2, s2 = alpha[b] * torch.cos(theta[b]), alpha[b] * torch.sin(theta[b])
            else:  # road_4: per group, values [0:group] drive cos, [group:2group] drive sin
                base = 2 * start
                c1, c2 = alpha[base + i] * torch.cos(theta[base + i]), alpha[base + i + half] * torch.cos(theta[base + i + half])
                s1 = alpha[base + group + i] * torch.sin(theta[base + group + i])
                s2 = alpha[base + group + i + half] * torch.sin(theta[base + group + i + half])
            out[..., a] = c1 * y[..., a] - s1 * y[..., b]
            out[..., b] = s2 * y[..., a] + c2 * y[..., b]
    return out


@pytest.mark.parametrize("variant,count", [("road_1", 8), ("road_2", 16), ("road_4", 32)])
@pytest.mark.parametrize("group", [4, 8, 16])
def test_variants_rotate_pairs_as_defined(variant, count, group):
    gen = torch.Generator().manual_seed(group)
    theta, alpha = torch.randn(count, generator=gen), torch.randn(count, generator=gen)
    y = torch.randn(3, 5, 16, generator=gen)
    expected = _reference_rotation(variant, group, theta, alpha, y)
    torch.testing.assert_close(rotate(variant, group, theta, alpha, y), expected)
    # The dense matrix used for merging is the same linear map.
    torch.testing.assert_close(y @ rotation_matrix(variant, group, theta, alpha).T, expected)


@pytest.mark.parametrize("variant,per_feature", [("road_1", 0.5), ("road_2", 1), ("road_4", 2)])
def test_parameter_count_per_variant_and_identity_start(variant, per_feature):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 16))
    model = get_peft_model(copy.deepcopy(base), RoadConfig(variant=variant, group_size=4, target_modules=["0", "2"]))
    layer = model.base_model.model[2]
    assert isinstance(layer, RoadLinear)
    assert layer.road_theta["default"].shape == (int(16 * per_feature),)
    x = torch.randn(2, 6)
    with torch.no_grad():
        assert torch.equal(model(x), base(x))  # angles 0, scales 1: the identity


def test_group_size_must_divide_every_output_size():
    with pytest.raises(ConfigError, match="even"):
        RoadConfig(group_size=6 + 1)
    with pytest.raises(ConfigError, match="positive"):
        RoadConfig(group_size=0)
    with pytest.raises(ConfigError, match="variant"):
        RoadConfig(variant="road_3")
    base = nn.Sequential(nn.Linear(4, 12))
    with pytest.raises(ConfigError, match="does not divide the 12 output features of '0'"):
        get_peft_model(base, RoadConfig(group_size=8, target_modules=["0"]))
    assert isinstance(base[0], nn.Linear)  # nothing was left behind


def test_merge_is_rotation_of_weight_and_bias_and_unmerge_inverts_it():
    torch.manual_seed(1)
    base = nn.Sequential(nn.Linear(5, 8))
    model = get_peft_model(copy.deepcopy(base), RoadConfig(variant="road_4", group_size=4, target_modules=["0"], init_weights=False))
    layer = model.base_model.model[0]
    r = rotation_matrix("road_4", 4, layer.road_theta["default"].detach(), layer.road_alpha["default"].detach())
    model.merge_adapter()
    torch.testing.assert_close(layer.base_layer.weight, r @ base[0].weight)
    torch.testing.assert_close(layer.base_layer.bias, r @ base[0].bias)
    model.unmerge_adapter()
    torch.testing.assert_close(layer.base_layer.weight, base[0].weight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.base_layer.bias, base[0].bias, atol=1e-5, rtol=1e-5)


def test_two_active_adapters_rotate_one_after_the_other():
    torch.manual_seed(2)
    base = nn.Sequential(nn.Linear(4, 8))
    model = get_peft_model(copy.deepcopy(base), RoadConfig(group_size=4, target_modules=["0"], init_weights=False))
    model.add_adapter("second", RoadConfig(variant="road_2", group_size=8, target_modules=["0"], init_weights=False))
    model.base_model.set_adapter(["default", "second"])
    layer = model.base_model.model[0]
    x = torch.randn(3, 4)
    with torch.no_grad():
        first = rotate("road_1", 4, layer.road_theta["default"], layer.road_alpha["default"], base(x))
        expected = rotate("road_2", 8, layer.road_theta["second"], layer.road_alpha["second"], first)
        torch.testing.assert_close(model(x), expected)
