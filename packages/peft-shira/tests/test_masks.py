"""SHiRA's own behaviour: random and custom masks, their validation, and the indices in saved files."""

from __future__ import annotations

import copy
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from peft_core import ConfigError, PeftModel, get_peft_model
from peft_shira import ShiraConfig, ShiraLinear, indices_from_mask, random_mask


def _base() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 4))


def test_random_mask_count_and_seeds():
    layer = nn.Linear(10, 6)
    mask = random_mask(layer, 2, random_seed=5)
    assert mask.shape == (6, 10) and mask.dtype == torch.bool and int(mask.sum()) == 2 * (10 + 6)
    assert torch.equal(mask, random_mask(layer, 2, random_seed=5))
    assert not torch.equal(mask, random_mask(layer, 2, random_seed=6))
    # No seed still means a fixed mask: a fresh generator starts from its default seed (as in HF).
    assert torch.equal(random_mask(layer, 2), random_mask(layer, 2))


def test_random_mask_matches_hugging_face():
    from peft.tuners.shira.mask_functions import random_mask as hf_random_mask

    layer = nn.Linear(12, 7)
    for seed in (None, 0, 123):
        assert torch.equal(random_mask(layer, 3, random_seed=seed), hf_random_mask(layer, 3, random_seed=seed).bool())


def test_forward_is_base_weight_plus_sparse_update():
    base = _base()
    model = get_peft_model(copy.deepcopy(base), ShiraConfig(r=1, target_modules=["0"], init_weights=False, random_seed=1))
    layer = model.base_model.model[0]
    assert isinstance(layer, ShiraLinear)
    rows, cols = layer.shira_indices["default"].long()
    assert layer.shira_indices["default"].dtype == torch.int32
    weight = base[0].weight.detach().clone()
    weight[rows, cols] += layer.shira_weight["default"].detach()
    x = torch.randn(3, 10)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), x @ weight.T + base[0].bias)
        layer.set_scale("default", 0.5)
        weight[rows, cols] -= 0.5 * layer.shira_weight["default"]
        torch.testing.assert_close(layer(x), x @ weight.T + base[0].bias)
    assert int((layer.get_delta_weight("default") != 0).sum()) == 16  # r * (in + out), nowhere else


def test_custom_mask_fn_gets_only_the_arguments_it_declares():
    seen = {}

    def first_rows(base_layer, r):  # no **kwargs: HF would pass bias=... and fail
        seen["called"] = True
        mask = torch.zeros_like(base_layer.weight)
        mask.view(-1)[: r * (base_layer.in_features + base_layer.out_features)] = 1
        return mask

    with pytest.warns(UserWarning, match="mask_fn"):
        config = ShiraConfig(r=1, mask_type="first_rows", target_modules=["0"])
    config.mask_fn = first_rows
    model = get_peft_model(_base(), config)
    indices = model.base_model.model[0].shira_indices["default"]
    assert seen["called"] and torch.equal(indices[0], torch.arange(16, dtype=torch.int32) // 10)
    assert "mask_fn" not in config.to_dict()


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda layer, r: torch.ones_like(layer.weight), "has 60 ones"),
        (lambda layer, r: torch.full_like(layer.weight, 0.5), "only 0 and 1"),
        (lambda layer, r: torch.zeros(3, 3), "has shape"),
    ],
)
def test_bad_masks_are_refused(make, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ShiraConfig(r=1, mask_type="bad", target_modules=["0"])
    config.mask_fn = make
    base = _base()
    with pytest.raises(ConfigError, match=message):
        get_peft_model(base, config)
    assert isinstance(base[0], nn.Linear)


def test_r_larger_than_the_layer_is_refused():
    with pytest.raises(ConfigError, match="lower r"):
        get_peft_model(_base(), ShiraConfig(r=4, target_modules=["2"]))  # 4 * (6 + 4) > 24


def test_custom_mask_indices_are_saved_and_load_without_the_mask_fn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ShiraConfig(r=1, mask_type="diagonal_band", target_modules=["0", "2"], init_weights=False)
    config.mask_fn = last_positions_mask
    model = get_peft_model(_base(), config).eval()
    x = torch.randn(4, 10)
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(tmp_path)
    saved = load_file(os.path.join(tmp_path, "adapter_model.safetensors"))
    assert saved["base_model.model.0.shira_indices"].dtype == torch.int32
    assert saved["base_model.model.0.shira_indices"].shape == (2, 16)
    loaded = PeftModel.from_pretrained(_base(), tmp_path)  # config has no mask_fn: indices come from the file
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def last_positions_mask(layer: nn.Linear, r: int) -> torch.Tensor:
    """Keep the last r*(in+out) positions (a deterministic custom mask)."""
    mask = torch.zeros(layer.weight.numel())
    mask[-r * (layer.in_features + layer.out_features) :] = 1
    return mask.view_as(layer.weight)


def test_an_adapter_without_mask_or_file_says_so():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = ShiraConfig(r=1, mask_type="mine", target_modules=["0"])
    model = get_peft_model(_base(), config)
    with pytest.raises(ConfigError, match="has no mask"):
        model(torch.randn(2, 10))


def test_float_indices_written_on_windows_load(tmp_path):
    model = get_peft_model(_base(), ShiraConfig(r=1, target_modules=["0"], init_weights=False)).eval()
    model.save_pretrained(tmp_path)
    path = os.path.join(tmp_path, "adapter_model.safetensors")
    state = load_file(path)
    state["base_model.model.0.shira_indices"] = state["base_model.model.0.shira_indices"].float()
    save_file(state, path, metadata={"format": "pt"})
    x = torch.randn(2, 10)
    loaded = PeftModel.from_pretrained(_base(), tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    state["base_model.model.0.shira_indices"][0, 0] = 0.5
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="not whole numbers"):
        PeftModel.from_pretrained(_base(), tmp_path)


def test_conv1d_and_other_layers_are_refused():
    with pytest.raises(ConfigError, match="only torch.nn.Linear"):
        get_peft_model(nn.Sequential(nn.Conv1d(2, 2, 1)), ShiraConfig(r=1, target_modules=["0"]))
