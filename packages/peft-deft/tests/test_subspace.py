"""DEFT's own behaviour, checked against the definition written with explicit `out × out` projectors:
`W' = (I − P_proj) W + Q (s R)`; the identity start; PaRa; rank capping; merging; GPT-2's Conv1D.
The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import copy
from importlib.metadata import entry_points

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from peft_core import ConfigError, get_peft_method, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import assert_same_seeded_start, hf_peft
from peft_deft import DeftConfig, DeftLinear

torch.set_num_threads(1)


def _adapted(**overrides) -> tuple[nn.Sequential, nn.Module]:
    config = DeftConfig(**{"r": 3, "target_modules": ["0", "2"], "init_weights": False, **overrides})
    return models.adapted_copy(lambda: nn.Sequential(nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 4)), config)


def _adapted_weight(layer: DeftLinear, weight: torch.Tensor, name: str = "default") -> torch.Tensor:
    """`(I − P_proj) W + Q (s R)` with the projector built as a full `out × out` matrix."""
    p = layer.deft_P[name].detach().double()
    if layer.deft_decomposition[name] == "qr":
        q = torch.linalg.qr(p).Q
        projector = q @ q.T
    else:
        q, projector = p, p @ torch.relu(p).T
    eye = torch.eye(p.shape[0], dtype=torch.float64)
    adapted = (eye - projector) @ weight.double()
    if not layer.deft_para[name]:
        adapted = adapted + q @ (layer.deft_R[name].detach().double() * layer.deft_scaling[name])
    return adapted


@pytest.mark.parametrize("overrides", [{}, {"decomposition_method": "qr"}, {"alpha": 6}, {"para": True}])
def test_forward_is_the_adapted_weight(overrides):
    base, model = _adapted(**overrides)
    layer: DeftLinear = model.base_model.model[0]
    x = torch.randn(5, 7)
    expected = F.linear(x.double(), _adapted_weight(layer, base[0].weight.detach()), base[0].bias.double())
    with torch.no_grad():
        torch.testing.assert_close(layer(x).double(), expected, atol=1e-5, rtol=1e-5)
        delta = layer.get_delta_weight("default").double()
    torch.testing.assert_close(base[0].weight.double() + delta, _adapted_weight(layer, base[0].weight.detach()), atol=1e-5, rtol=1e-5)


def test_qr_projector_is_an_orthogonal_projection():
    _, model = _adapted(decomposition_method="qr")
    layer: DeftLinear = model.base_model.model[0]
    q, right = layer._project(layer.deft_P["default"], "default")
    projector = q @ right.T
    torch.testing.assert_close(projector @ projector, projector, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(projector, projector.T)
    assert torch.linalg.matrix_rank(projector) == 3


def test_identity_start_and_scaling():
    base, model = _adapted(init_weights=True, alpha=6)
    layer: DeftLinear = model.base_model.model[0]
    p, w = layer.deft_P["default"].detach(), base[0].weight.detach()
    assert layer.deft_scaling["default"] == 2.0  # alpha / r
    torch.testing.assert_close(layer.deft_R["default"].detach(), torch.relu(p).T @ w / 2.0)
    torch.testing.assert_close(_adapted_weight(layer, w).float(), w, atol=1e-6, rtol=1e-6)


def test_para_trains_only_the_projection_and_rank_is_capped():
    _, model = _adapted(para=True, r=10)
    first, second = model.base_model.model[0], model.base_model.model[2]
    assert "default" not in first.deft_R and first.deft_P["default"].shape == (6, 6)  # r = min(10, out=6)
    assert second.deft_P["default"].shape == (4, 4)
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "base_model.model.0.deft_P.default",
        "base_model.model.2.deft_P.default",
    ]


def test_merging_two_adapters_sums_changes_taken_on_the_original_weight():
    base, model = _adapted()
    model.add_adapter("other", DeftConfig(r=2, decomposition_method="qr", target_modules=["0"], init_weights=False))
    layer: DeftLinear = model.base_model.model[0]
    w0 = base[0].weight.detach()
    expected = _adapted_weight(layer, w0, "default") + _adapted_weight(layer, w0, "other") - w0.double()
    layer.merge(adapter_names=["default", "other"])
    torch.testing.assert_close(layer.get_base_layer().weight.double(), expected, atol=1e-5, rtol=1e-5)
    assert set(layer.deft_merge_factor.keys()) == {"default", "other"}
    assert "deft_merge_factor" not in str(list(model.state_dict()))  # a cache, never saved
    layer.unmerge()
    torch.testing.assert_close(layer.get_base_layer().weight.detach(), w0, atol=1e-6, rtol=1e-6)
    assert not layer.deft_merge_factor.keys()


def test_conv1d_weights_are_transposed():
    torch.manual_seed(0)
    base = models.make_gpt2()
    with pytest.warns(UserWarning, match="fan_in_fan_out"):  # switched on for Conv1D (and saved), as HF does
        model = get_peft_model(copy.deepcopy(base), DeftConfig(r=2, target_modules=["c_attn"], init_weights=False))
    assert model.peft_config["default"].fan_in_fan_out
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    w = base.transformer.h[0].attn.c_attn.weight.detach()  # [in, out]
    adapted = _adapted_weight(layer, w.T)  # [out, in]
    torch.testing.assert_close(w.double() + layer.get_delta_weight("default").double(), adapted.T, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(hf_peft() is None, reason="Hugging Face PEFT is not installed")
@pytest.mark.parametrize("init_weights", [True, False])
def test_seeded_start_equals_hugging_faces(init_weights):
    base = nn.Sequential(nn.Linear(7, 6), nn.Linear(6, 4))
    kwargs = dict(r=3, target_modules=["0", "1"], init_weights=init_weights, alpha=5, init_scale=2.0)
    assert_same_seeded_start(lambda: copy.deepcopy(base), DeftConfig(**kwargs), hf_peft().DeftConfig(**kwargs), 5)


def test_registration_and_refusals():
    assert get_peft_method("deft").config_cls is DeftConfig
    assert any(ep.name == "deft" for ep in entry_points(group="peft.methods"))
    with pytest.raises(ConfigError, match="decomposition_method"):
        DeftConfig(decomposition_method="svd")
    with pytest.raises(ConfigError, match="init_scale"):
        DeftConfig(init_weights=False, init_scale=-1.0)
    with pytest.raises(ConfigError, match="not supported by DEFT"):
        get_peft_model(nn.Sequential(nn.Conv2d(2, 2, 1)), DeftConfig(target_modules=["0"]))
