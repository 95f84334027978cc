"""WaveFT's own behaviour: the inverse wavelet transform, coefficient positions and layout, families."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from peft_core import ConfigError, get_peft_model
from peft_waveft import FAMILIES, WaveFTConfig, coefficient_positions, delta_from_spectrum, inverse_dwt2


@pytest.mark.parametrize("family", ["db1", "db2", "sym4", "coif1", "db12", "sym15", "coif6"])
def test_inverse_dwt_matches_pywavelets(family):
    pywt = pytest.importorskip("pywt")
    gen = torch.Generator().manual_seed(len(family))
    bands = [torch.randn(40, 36, generator=gen, dtype=torch.float64) for _ in range(4)]
    ours = inverse_dwt2(*bands, family).numpy()
    ref = pywt.idwt2((bands[0].numpy(), tuple(b.numpy() for b in bands[1:])), family, mode="zero")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_haar_update_of_one_coefficient_is_a_2x2_block():
    # With db1 a single approximation coefficient c reconstructs to a 2x2 block of c / 2.
    positions = torch.tensor([[0], [0]])
    delta = delta_from_spectrum(torch.tensor([3.0]), positions, (6, 8), "db1", use_idwt=True)
    expected = torch.zeros(6, 8)
    expected[:2, :2] = 1.5
    torch.testing.assert_close(delta, expected)


def test_without_idwt_the_update_is_the_sparse_grid():
    positions = coefficient_positions(5, 7, 4, seed=3)
    values = torch.tensor([1.0, -2.0, 3.0, 4.0])
    delta = delta_from_spectrum(values, positions, (5, 7), "db3", use_idwt=False)
    assert int((delta != 0).sum()) == 4 and torch.equal(delta[positions[0], positions[1]], values)


def test_positions_are_seeded_distinct_cells():
    positions = coefficient_positions(6, 10, 25, seed=777)
    assert torch.equal(positions, coefficient_positions(6, 10, 25, seed=777))
    flat = positions[0] * 10 + positions[1]
    assert len(set(flat.tolist())) == 25 and int(positions[0].max()) < 6 and int(positions[1].max()) < 10


@pytest.mark.parametrize("family", ["db3", "sym5", "coif2"])
@pytest.mark.parametrize("shape", [(8, 12), (7, 9)])
def test_layer_update_has_the_weight_shape_and_drives_the_output(family, shape):
    out_features, in_features = shape
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(in_features, out_features))
    config = WaveFTConfig(n_frequency=10, wavelet_family=family, scaling=2.0, target_modules=["0"], init_weights=False)
    model = get_peft_model(copy.deepcopy(base), config)
    layer = model.base_model.model[0]
    delta = layer.get_delta_weight("default")
    assert delta.shape == (out_features, in_features) and delta.abs().sum() > 0
    x = torch.randn(3, in_features)
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x) + x @ delta.T, atol=1e-5, rtol=1e-5)


def test_proportional_parameters_share_the_budget_by_layer_size():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 12))  # sizes 16 and 48
    model = get_peft_model(base, WaveFTConfig(n_frequency=10, proportional_parameters=True, target_modules=["0", "1"]))
    counts = [model.base_model.model[i].waveft_n_frequency["default"] for i in (0, 1)]
    assert counts == [5, 15]


def test_families_and_refusals():
    assert {"db1", "db38", "sym2", "sym20", "coif1", "coif17"} <= set(FAMILIES) and "haar" not in FAMILIES
    with pytest.raises(ConfigError, match="wavelet_family"):
        WaveFTConfig(wavelet_family="bior1.3")
    with pytest.raises(ConfigError, match="positive"):
        WaveFTConfig(n_frequency=0)
    with pytest.warns(UserWarning, match="coif4"):
        WaveFTConfig(wavelet_family="coif4")
    with pytest.raises(ConfigError, match="'0'.*n_frequency=100"):
        get_peft_model(nn.Sequential(nn.Linear(4, 4)), WaveFTConfig(n_frequency=100, target_modules=["0"]))


def test_positions_are_not_saved_and_follow_the_model(tmp_path):
    model = get_peft_model(nn.Sequential(nn.Linear(6, 6)), WaveFTConfig(n_frequency=5, target_modules=["0"]))
    assert "base_model.model.0.waveft_indices.default" not in model.state_dict()
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    assert list(load_file(str(tmp_path / "adapter_model.safetensors"))) == ["base_model.model.0.waveft_spectrum"]


def test_filters_equal_hugging_face_table_except_its_broken_coiflets():
    from peft.tuners.waveft.wavelet import Wavelet, wavelist

    from peft_waveft.families import DIFFERS_FROM_HF, reconstruction_filters

    for family in wavelist():
        if family == "haar":
            continue
        theirs = Wavelet(family)
        ours = reconstruction_filters(family, torch.float32, torch.device("cpu"))
        same = len(theirs.rec_lo) == len(ours[0]) and all(
            torch.equal(torch.tensor(t, dtype=torch.float32), o) for t, o in zip((theirs.rec_lo, theirs.rec_hi), ours)
        )
        assert same == (family not in DIFFERS_FROM_HF), family
    assert float(np.sum(np.square(Wavelet("coif4").rec_lo))) == pytest.approx(1.0099, abs=1e-4)  # not orthonormal
