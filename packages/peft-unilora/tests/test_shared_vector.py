"""Uni-LoRA's own behaviour: the balanced index assignment (equal to Hugging Face PEFT's), factors read
from the one shared vector with their 1/sqrt(uses) scales, the forward against that definition, the
shared vector's training and saving. The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import copy
from importlib.metadata import entry_points

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from peft_core import ConfigError, get_peft_method, get_peft_model, get_peft_model_state_dict
from peft_core.testing.hf import hf_peft
from peft_core.testing.models import adapted_copy
from peft_unilora import UniLoraConfig, UniLoraLinear
from peft_unilora.indices import balanced_indices

torch.set_num_threads(1)


def _adapted(**overrides) -> tuple[nn.Sequential, nn.Module]:
    config = UniLoraConfig(**{"r": 3, "theta_d_length": 16, "target_modules": ["0", "2"], "init_weights": False, **overrides})
    return adapted_copy(lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4)), config)


@pytest.mark.parametrize(("count", "length"), [(100, 16), (7, 16), (64, 16), (0, 3)])
def test_every_index_is_used_evenly(count, length):
    indices = balanced_indices(count, length, seed=3)
    uses = torch.bincount(indices, minlength=length)
    assert indices.numel() == count and int(uses.max() - uses.min()) <= 1
    assert torch.equal(indices, balanced_indices(count, length, seed=3))
    peft = hf_peft()
    if peft is not None:
        assert torch.equal(indices, peft.tuners.unilora.model.UniLoraModel.generate_index(count, length, 3))


def test_factors_read_the_shared_vector_and_the_forward_uses_them():
    base, model = _adapted()
    theta = model.base_model.unilora_theta_d["default"].detach()
    layers: list[UniLoraLinear] = [model.base_model.model[0], model.base_model.model[2]]
    every = torch.cat([t for layer in layers for t in (layer.unilora_indices_A["default"].flatten(), layer.unilora_indices_B["default"].flatten())])
    assert every.numel() == 3 * 6 + 5 * 3 + 3 * 5 + 4 * 3  # A then B of each layer, in module order
    uses = torch.bincount(every, minlength=16).float()
    first = layers[0]
    a = torch.empty(3, 6)
    for i in range(3):
        for j in range(6):
            k = int(first.unilora_indices_A["default"][i, j])
            a[i, j] = theta[k] / uses[k].sqrt()
    b = torch.tensor([[float(theta[k] / uses[k].sqrt()) for k in row.tolist()] for row in first.unilora_indices_B["default"]])
    x = torch.randn(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(first(x), base[0](x) + x @ a.T @ b.T, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(first.get_delta_weight("default"), b @ a, atol=1e-6, rtol=1e-5)


def test_only_the_shared_vector_trains_and_is_saved(tmp_path):
    _, model = _adapted()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["base_model.unilora_theta_d.default"]
    out = model(torch.randn(2, 6)).pow(2).sum()
    out.backward()
    assert model.base_model.unilora_theta_d["default"].grad.abs().sum() > 0  # both layers read it
    model.add_adapter("other", UniLoraConfig(r=2, theta_d_length=8, target_modules=["2"]))
    model.set_adapter("other")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["base_model.unilora_theta_d.other"]
    model.save_pretrained(tmp_path)
    assert set(load_file(tmp_path / "adapter_model.safetensors")) == {"base_model.unilora_theta_d"}
    model.delete_adapter("other")
    assert "other" not in model.base_model.unilora_theta_d


def test_saved_indices_and_scales():
    _, model = _adapted(save_indices=True)
    keys = set(get_peft_model_state_dict(model))
    expected = {"base_model.unilora_theta_d"} | {
        f"base_model.model.{i}.unilora_{kind}_{side}" for i in (0, 2) for kind in ("indices", "scales") for side in "AB"
    }
    assert keys == expected


@pytest.mark.skipif(hf_peft() is None, reason="Hugging Face PEFT is not installed")
@pytest.mark.parametrize("init_weights", [True, False])
def test_seeded_start_equals_hugging_faces(init_weights):
    peft = hf_peft()
    base = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4))
    kwargs = dict(r=3, theta_d_length=20, proj_seed=9, target_modules=["0", "1"], init_weights=init_weights)
    torch.manual_seed(1)
    ours = get_peft_model(copy.deepcopy(base), UniLoraConfig(**kwargs))
    after_ours = torch.rand(1)
    torch.manual_seed(1)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.UniLoraConfig(**kwargs))
    after_theirs = torch.rand(1)
    assert torch.equal(after_ours, after_theirs)  # the global RNG advanced the same way
    assert torch.equal(ours.base_model.unilora_theta_d["default"], theirs.base_model.unilora_theta_d["default"])
    for i in (0, 1):
        mine, hfs = ours.base_model.model[i], theirs.base_model.model[i]
        for attr in ("unilora_indices_A", "unilora_indices_B", "unilora_scales_A", "unilora_scales_B"):
            assert torch.equal(getattr(mine, attr)["default"], getattr(hfs, attr)["default"]), attr


def test_registration_and_refusals():
    assert get_peft_method("unilora").config_cls is UniLoraConfig
    assert any(ep.name == "unilora" for ep in entry_points(group="peft.methods"))
    with pytest.raises(ConfigError, match="theta_d_length"):
        UniLoraConfig(theta_d_length=0)
    with pytest.raises(ConfigError, match="layers_pattern"):
        UniLoraConfig(target_modules=".*proj", layers_pattern="layers")
    with pytest.raises(ConfigError, match="not supported by Uni-LoRA"):
        get_peft_model(nn.Sequential(nn.Conv2d(2, 2, 1)), UniLoraConfig(target_modules=["0"]))
