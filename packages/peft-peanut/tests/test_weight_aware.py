"""PEANuT's own behaviour: the update computed from the frozen weight (against a loop written from the
definition), residual encoder/decoder stacks, merging from the pre-merge weight, activations, and the
saved key layout of the nested lists. The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import copy
from importlib.metadata import entry_points

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from peft_core import ConfigError, get_peft_method, get_peft_model
from peft_core.testing.hf import assert_same_seeded_start, hf_peft
from peft_core.testing.models import adapted_copy
from peft_peanut import PeanutConfig, PeanutLinear
from peft_peanut.activations import BUILTIN, activation

torch.set_num_threads(1)


def _adapted(**overrides) -> tuple[nn.Sequential, nn.Module]:
    config = PeanutConfig(**{"r": 4, "target_modules": ["0", "2"], "init_weights": False, **overrides})
    return adapted_copy(lambda: nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)), config)


def _delta(layer: PeanutLinear, weight: torch.Tensor, name: str = "default") -> torch.Tensor:
    """ΔW column by column: each input column of W (a vector of `out` entries) through the network."""
    f = activation(layer.act_fn[name])
    a = layer.peanut_A[name].weight.detach()
    encoders = [m.weight.detach() for m in layer.peanut_encoders[name]]
    decoders = [m.weight.detach() for m in layer.peanut_decoders[name]]
    b = layer.peanut_B[name].weight.detach()
    columns = []
    for j in range(weight.shape[1]):
        h = f(a @ weight[:, j])
        stack = []
        for enc in encoders:
            stack.append(h)
            h = f(enc @ h)
        for dec in decoders:
            h = f(dec @ h) + stack.pop()
        columns.append(layer.scaling[name] * (b @ h))
    return torch.stack(columns, dim=1)


@pytest.mark.parametrize("overrides", [{}, {"depth": 2}, {"depth": 3, "act_fn": "gelu", "scaling": 0.3}])
def test_update_is_the_network_applied_to_the_weight(overrides):
    base, model = _adapted(**overrides)
    layer: PeanutLinear = model.base_model.model[0]
    expected = _delta(layer, base[0].weight.detach())
    torch.testing.assert_close(layer.get_delta_weight("default").detach(), expected, atol=1e-5, rtol=1e-5)
    x = torch.randn(4, 5)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), base[0](x) + x @ expected.T, atol=1e-5, rtol=1e-5)


def test_merges_use_the_weight_from_before_the_first_merge():
    base, model = _adapted(depth=1)
    model.add_adapter("other", PeanutConfig(r=2, target_modules=["0"], init_weights=False))
    layer: PeanutLinear = model.base_model.model[0]
    w0 = base[0].weight.detach().clone()
    layer.merge(adapter_names=["default"])
    layer.merge(adapter_names=["other"])  # computed from w0, not from the already merged weight
    expected = w0 + _delta(layer, w0, "default") + _delta(layer, w0, "other")
    torch.testing.assert_close(layer.get_base_layer().weight.detach(), expected, atol=1e-5, rtol=1e-5)
    layer.unmerge()
    assert torch.equal(layer.get_base_layer().weight, w0) and layer.weight_before_merge is None


def test_nested_lists_save_without_the_adapter_name(tmp_path):
    _, model = _adapted(depth=2)
    model.add_adapter("1", PeanutConfig(r=2, depth=2, target_modules=["2"]))  # a name that looks like a list index
    assert "base_model.model.2.peanut_encoders.1.0.weight" in model.state_dict()
    model.save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "1" / "adapter_model.safetensors"))
    assert keys == {
        f"base_model.model.2.peanut_{part}"
        for part in ("A.weight", "B.weight", "encoders.0.weight", "encoders.1.weight", "decoders.0.weight", "decoders.1.weight")
    }


def test_builtin_activations_are_transformers_functions():
    from transformers.activations import ACT2FN

    x = torch.randn(64) * 4
    for name, fn in BUILTIN.items():
        assert torch.equal(fn(x), ACT2FN[name](x)), name
    assert torch.equal(activation("quick_gelu")(x), ACT2FN["quick_gelu"](x))  # others come from transformers


@pytest.mark.skipif(hf_peft() is None, reason="Hugging Face PEFT is not installed")
def test_seeded_random_start_equals_hugging_faces():
    base = nn.Sequential(nn.Linear(5, 6), nn.Linear(6, 3))
    kwargs = dict(r=3, depth=2, target_modules=["0", "1"], init_weights=False)
    assert_same_seeded_start(lambda: copy.deepcopy(base), PeanutConfig(**kwargs), hf_peft().PeanutConfig(**kwargs), 2)


def test_registration_and_refusals():
    assert get_peft_method("peanut").config_cls is PeanutConfig
    assert any(ep.name == "peanut" for ep in entry_points(group="peft.methods"))
    with pytest.raises(ConfigError, match="depth"):
        PeanutConfig(depth=-1)
    with pytest.raises(ConfigError, match="act_fn"):
        PeanutConfig(act_fn="softmax")
    with pytest.raises(ConfigError, match="only torch.nn.Linear"):
        get_peft_model(nn.Sequential(nn.Embedding(4, 4)), PeanutConfig(target_modules=["0"]))
