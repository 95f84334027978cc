"""GLoRA's own behaviour, each checked against an independent computation of its definition:
`W' = W + W ⊙ A + B`, `b' = b + b ⊙ D + E + W C`, per path kind; merging several adapters; refusals.
The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import copy
from importlib.metadata import entry_points

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from peft_core import ConfigError, get_peft_method, get_peft_model
from peft_core.testing.hf import hf_peft
from peft_core.testing.models import adapted_copy
from peft_glora import GloraConfig, GloraLinear

torch.set_num_threads(1)


def _adapted(**overrides) -> tuple[nn.Sequential, GloraLinear]:
    config = GloraConfig(**{"r": 2, "target_modules": ["0", "2"], "init_weights": False, **overrides})
    return adapted_copy(lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3, bias=False)), config)


def _expected(layer: GloraLinear, weight: torch.Tensor, bias: torch.Tensor | None, name: str = "default"):
    """W' and b' from the saved tensors, written out element by element from the definition."""
    def tensor(attr: str, shape: tuple[int, ...]) -> torch.Tensor:
        path = layer._modules[attr][name]
        params = dict(path.named_parameters())
        if "Xd" in params:
            return (params["Xd"] @ params["Xu"]).detach()
        if "X" in params:
            x = params["X"].detach()
            return x.expand(shape) if x.numel() > 1 else torch.full(shape, float(x))
        return torch.zeros(shape)

    out_f, in_f = weight.shape
    a, b = tensor("glora_A", (out_f, in_f)), tensor("glora_B", (out_f, in_f))
    new_weight = torch.empty_like(weight)
    for i in range(out_f):
        for j in range(in_f):
            new_weight[i, j] = weight[i, j] * (1 + a[i, j]) + b[i, j]
    if bias is None:
        return new_weight, None
    c = tensor("glora_C", (in_f, 1))[:, 0]
    d, e = tensor("glora_D", (out_f,)), tensor("glora_E", (out_f,))
    new_bias = torch.stack([bias[i] * (1 + d[i]) + e[i] + (weight[i] * c).sum() for i in range(out_f)])
    return new_weight, new_bias


@pytest.mark.parametrize(
    "paths",
    [
        dict(config_A_B="lora", config_C="lora", config_D_E="constant"),
        dict(config_A_B="vector", config_C="vector", config_D_E="vector"),
        dict(config_A_B="constant", config_C="none", config_D_E="none"),
        dict(config_A_B="none", config_C="lora", config_D_E="vector"),
    ],
)
def test_forward_follows_the_definition_for_every_path_kind(paths):
    base, model = _adapted(**paths)
    x = torch.randn(4, 6)
    first: GloraLinear = model.base_model.model[0]
    weight, bias = _expected(first, base[0].weight.detach(), base[0].bias.detach())
    with torch.no_grad():
        torch.testing.assert_close(first(x), F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)
        expected = F.linear(torch.relu(F.linear(x, weight, bias)), _expected(model.base_model.model[2], base[2].weight, None)[0])
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_shapes_and_bias_free_layers_hold_zero_buffers():
    _, model = _adapted()
    with_bias, without = model.base_model.model[0], model.base_model.model[2]
    assert with_bias.glora_A["default"].Xd.shape == (5, 2) and with_bias.glora_A["default"].Xu.shape == (2, 6)
    assert with_bias.glora_C["default"].Xd.shape == (6, 2) and with_bias.glora_C["default"].Xu.shape == (2, 1)
    assert with_bias.glora_D["default"].X.shape == (1,)
    # no bias: C, D, E are switched off, kept as zero buffers that are saved (Hugging Face PEFT's file layout)
    for attr, shape in (("glora_C", (5, 1)), ("glora_D", (3,)), ("glora_E", (3,))):
        path = without._modules[attr]["default"]
        assert not list(path.parameters()) and path.zeros.shape == shape and not path.zeros.any()
    saved = set(model.state_dict())
    assert "base_model.model.2.glora_C.default.zeros" in saved


def test_merging_two_adapters_applies_both_to_the_original_weights():
    base, model = _adapted(config_A_B="vector", config_D_E="vector")
    model.add_adapter("other", GloraConfig(r=3, target_modules=["0"], init_weights=False))
    layer: GloraLinear = model.base_model.model[0]
    w0, b0 = base[0].weight.detach(), base[0].bias.detach()
    w1, b1 = _expected(layer, w0, b0, "default")
    w2, b2 = _expected(layer, w0, b0, "other")
    expected_w, expected_b = w1 + w2 - w0, b1 + b2 - b0  # each adapter's change, taken on W0
    layer.merge(adapter_names=["other"])
    layer.merge(adapter_names=["default"])  # merging more re-merges everything on the original weights
    torch.testing.assert_close(layer.get_base_layer().weight.detach(), expected_w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.get_base_layer().bias.detach(), expected_b, atol=1e-5, rtol=1e-5)
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.get_base_layer().weight.detach(), w0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.get_base_layer().bias.detach(), b0, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(hf_peft() is None, reason="Hugging Face PEFT is not installed")
def test_seeded_random_start_equals_hugging_faces():
    peft = hf_peft()
    base = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3))
    kwargs = dict(r=2, target_modules=["0", "1"], init_weights=False, config_A_B="lora", config_C="vector", config_D_E="vector")
    torch.manual_seed(3)
    ours = get_peft_model(copy.deepcopy(base), GloraConfig(**kwargs))
    torch.manual_seed(3)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.GloraConfig(**kwargs))
    mine, hfs = ours.state_dict(), theirs.state_dict()
    assert set(mine) == set(hfs)
    assert all(torch.equal(mine[k], hfs[k]) for k in mine)


def test_registration_and_refusals():
    assert get_peft_method("glora").config_cls is GloraConfig
    assert any(ep.name == "glora" for ep in entry_points(group="peft.methods"))
    with pytest.raises(ConfigError, match="config_D_E"):
        GloraConfig(config_D_E="lora")  # D and E are bias-sized: no low-rank form
    with pytest.raises(ConfigError, match="only plain"):
        get_peft_model(nn.Sequential(nn.Conv2d(2, 2, 1)), GloraConfig(target_modules=["0"]))

    class MyLinear(nn.Linear):
        pass

    with pytest.raises(ConfigError, match="only plain"):  # HF checks the exact type
        get_peft_model(nn.Sequential(MyLinear(2, 2)), GloraConfig(target_modules=["0"]))

