"""RandLoRA's own behaviour: the shared bases (shape, draw, saving or regenerating), the update's form."""

from __future__ import annotations

import copy
import math
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from peft_core import PeftModel, get_peft_model
from peft_randlora import RandLoraConfig, RandLoraLinear, make_bases


def _base() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 8))


def test_bases_are_shared_and_sized_for_the_largest_layer():
    model = get_peft_model(_base(), RandLoraConfig(r=3, target_modules=["0", "2"]))
    tuner = model.base_model
    # element-wise largest (out, in) = (20, 20): min_dim 20, max_dim 20, ceil(20/3) = 7 bases
    assert tuner.randlora_A["default"].shape == (3, 1, 20)
    assert tuner.randlora_B["default"].shape == (20, 7, 3)
    first, second = tuner.model[0], tuner.model[2]
    assert first.randlora_A is tuner.randlora_A and second.randlora_B is tuner.randlora_B
    assert first.randlora_lambda["default"].shape == (3, 4) and first.randlora_gamma["default"].shape == (4, 12)
    assert second.randlora_lambda["default"].shape == (3, 3) and second.randlora_gamma["default"].shape == (3, 8)
    assert not any(p.requires_grad for p in (tuner.randlora_A["default"], tuner.randlora_B["default"]))


def test_dense_bases_match_hugging_face_draw():
    from peft.tuners.randlora.model import _kaiming_init

    basis_a, basis_b = make_bases(4, 24, 10, key=7)
    gen = torch.Generator().manual_seed(7)
    ref_a = _kaiming_init((4, 1, 10), generator=gen)
    ref_b = torch.cat([_kaiming_init((24, 1, 4), generator=gen) for _ in range(3)], dim=1)
    assert torch.equal(basis_a, ref_a / ref_a.std()) and torch.equal(basis_b, ref_b / ref_b.std())
    assert basis_a.dtype == torch.bfloat16  # HF draws them in bf16 (on machines with bf16)


@pytest.mark.parametrize("kind,zero_share", [("sparse", 2 / 3), ("very_sparse", 1 - 1 / math.sqrt(400))])
def test_sparse_bases_are_ternary(kind, zero_share):
    basis_a, basis_b = make_bases(2, 600, 400, key=0, **{kind: True})
    for basis in (basis_a, basis_b):
        values = torch.unique(basis)  # -c, 0, c (c = 1 / std of the ternary draw)
        assert len(values) == 3 and values[1] == 0 and values[0] == -values[2]
        assert float(basis.std()) == pytest.approx(1.0, rel=1e-5)
    measured = float((basis_b == 0).float().mean())
    assert measured == pytest.approx(zero_share, abs=0.02)


def test_update_is_sum_over_bases_of_scaled_rank_r_products():
    model = get_peft_model(_base(), RandLoraConfig(r=3, target_modules=["0"], init_weights=False, randlora_alpha=6))
    layer: RandLoraLinear = model.base_model.model[0]
    a = model.base_model.randlora_A["default"][:, 0, :12]  # [r, in]: in_features is the smaller side
    b = model.base_model.randlora_B["default"][:20, :4, :]  # [out, n, r]
    lam, gamma = layer.randlora_lambda["default"].detach(), layer.randlora_gamma["default"].detach()
    # HF pairs lambda/gamma's (rank i, basis j) with B's flattened column i*n + j read as (basis, rank).
    small = (lam[:, :, None] * a[:, None, :] * gamma[None]).reshape(12, 12)  # rows (i, j)
    large = b.reshape(20, 12)  # columns (j', i')
    expected = (large @ small) * (6 / 3)
    torch.testing.assert_close(layer.get_delta_weight("default"), expected, atol=1e-5, rtol=1e-5)


def test_save_projection_false_regenerates_the_same_bases(tmp_path):
    with pytest.warns(UserWarning, match="save_projection=False"):
        config = RandLoraConfig(r=4, target_modules=["0", "2"], save_projection=False, projection_prng_key=9, init_weights=False)
    model = get_peft_model(_base(), config).eval()
    model.save_pretrained(tmp_path)
    keys = load_file(os.path.join(tmp_path, "adapter_model.safetensors")).keys()
    assert not [k for k in keys if "randlora_A" in k or "randlora_B" in k]
    x = torch.randn(3, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = PeftModel.from_pretrained(_base(), tmp_path)
    assert torch.equal(loaded.base_model.randlora_A["default"], model.base_model.randlora_A["default"])
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_saved_files_hold_hf_per_layer_copies_of_the_bases(tmp_path):
    model = get_peft_model(_base(), RandLoraConfig(r=4, target_modules=["0", "2"]))
    model.save_pretrained(tmp_path)
    state = load_file(os.path.join(tmp_path, "adapter_model.safetensors"))
    for prefix in ("base_model", "base_model.model.0", "base_model.model.2"):
        assert torch.equal(state[f"{prefix}.randlora_A"], state["base_model.randlora_A"])
        assert torch.equal(state[f"{prefix}.randlora_B"], state["base_model.randlora_B"])


def test_bases_follow_a_bf16_base_and_are_autocast_to_fp32():
    base = _base().to(torch.bfloat16)
    model = get_peft_model(copy.deepcopy(base), RandLoraConfig(r=4, target_modules=["0"]))
    assert model.base_model.randlora_A["default"].dtype == torch.float32
    kept = get_peft_model(copy.deepcopy(base), RandLoraConfig(r=4, target_modules=["0"]), autocast_adapter_dtype=False)
    assert kept.base_model.randlora_A["default"].dtype == torch.bfloat16


def test_each_adapter_has_its_own_bases_and_unload_drops_them():
    model = get_peft_model(_base(), RandLoraConfig(r=4, target_modules=["0"], projection_prng_key=1))
    model.add_adapter("other", RandLoraConfig(r=5, target_modules=["0", "2"], projection_prng_key=2))
    tuner = model.base_model
    assert tuner.randlora_A["other"].shape == (5, 1, 20) and tuner.randlora_A["default"].shape == (4, 1, 12)
    model.delete_adapter("other")
    assert "other" not in tuner.randlora_A
    model.merge_and_unload()
    assert len(tuner.randlora_A) == 0
