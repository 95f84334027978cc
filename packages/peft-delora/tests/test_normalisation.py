"""DeLoRA's own behaviour: normalised rank-1 terms, the lambda bound, the saved weight-norm buffer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peft_core import ConfigError, PeftModel, get_peft_model
from peft_delora import DeloraConfig, DeloraLinear


def _model(**overrides) -> tuple[nn.Sequential, nn.Module]:
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 4))
    config = DeloraConfig(**{"r": 3, "target_modules": ["0", "2"], "init_weights": False, **overrides})
    return base, get_peft_model(copy.deepcopy(base), config)


def test_update_is_a_sum_of_normalised_rank_one_terms():
    base, model = _model(delora_lambda=4)
    layer: DeloraLinear = model.base_model.model[0]
    a, b = layer.delora_A["default"].detach(), layer.delora_B["default"].detach()
    column_norms = base[0].weight.norm(dim=0)
    expected = sum(torch.outer(b[:, i], a[i]) / (a[i].norm() * b[:, i].norm()) for i in range(3)) * (4 / 3)
    torch.testing.assert_close(layer.get_delta_weight("default"), expected * column_norms, atol=1e-6, rtol=1e-5)
    x = torch.randn(5, 10)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), base[0](x) + x @ (expected * column_norms).T, atol=1e-5, rtol=1e-5)


def test_direction_is_decoupled_from_factor_scale_and_lambda_bounds_the_size():
    _, model = _model(delora_lambda=2.5)
    layer: DeloraLinear = model.base_model.model[0]
    delta = layer.get_delta_weight("default").detach()
    with torch.no_grad():
        layer.delora_A["default"].mul_(torch.tensor([[3.0], [0.5], [7.0]]))  # rescale each rank component
        layer.delora_B["default"].mul_(11.0)
    torch.testing.assert_close(layer.get_delta_weight("default"), delta, atol=1e-5, rtol=1e-5)
    # Without the column norms, the update's Frobenius norm is at most |lambda|.
    unscaled = delta / layer.delora_w_norm["default"]
    assert float(unscaled.norm()) <= 2.5 + 1e-5


def test_fresh_adapter_is_a_no_op_without_nans():
    base, model = _model(init_weights=True)
    x = torch.randn(2, 10)
    with torch.no_grad():
        out = model(x)
    assert torch.isfinite(out).all() and torch.equal(out, base(x))  # B = 0: norms clamped at 1e-4


def test_weight_norm_is_captured_saved_and_kept_after_merging(tmp_path):
    base, model = _model()
    layer: DeloraLinear = model.base_model.model[0]
    norms = layer.delora_w_norm["default"].clone()
    torch.testing.assert_close(norms, base[0].weight.norm(dim=0))
    assert "delora_w_norm.default" in dict(layer.named_buffers())
    model.eval()
    x = torch.randn(3, 10)
    with torch.no_grad():
        expected = model(x)
        model.merge_adapter()
        assert torch.equal(layer.delora_w_norm["default"], norms)  # merging changed W, not the norms
        model.unmerge_adapter()
    model.save_pretrained(tmp_path)
    other_base = copy.deepcopy(base)
    with torch.no_grad():
        other_base[0].weight.mul_(2.0)  # a different base: the file's norms are used, not recomputed ones
    loaded = PeftModel.from_pretrained(other_base, tmp_path)
    assert torch.equal(loaded.base_model.model[0].delora_w_norm["default"], norms)
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    with torch.no_grad():
        assert torch.equal(reloaded(x), expected)


def test_rank_and_lambda_patterns():
    _, model = _model(rank_pattern={"2": 2}, lambda_pattern={"0": 9})
    first, second = model.base_model.model[0], model.base_model.model[2]
    assert first.r["default"] == 3 and second.r["default"] == 2
    assert first.delora_lambda["default"].item() == 9.0 and second.delora_lambda["default"].item() == 15.0


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"r": 0}, None),
        ({"bias": "lora_only"}, "bias"),
        ({"layers_pattern": "layers"}, "layers_to_transform"),
        ({"rank_pattern": {"q": 0}}, "rank_pattern"),
    ],
)
def test_config_refusals(fields, match):
    with pytest.raises(ConfigError, match=match):
        DeloraConfig(**fields)


def test_non_linear_targets_are_refused():
    with pytest.raises(ConfigError, match="not supported by DeLoRA; supported: torch.nn.Linear only"):
        get_peft_model(nn.Sequential(nn.Conv2d(2, 2, 1)), DeloraConfig(target_modules=["0"]))
