"""Super-Tuning's own behaviour: the sparse support chosen by magnitude, the forward against a dense
rebuild of the definition, Supra's LoRA part, positions recomputed on load (both ways with Hugging
Face PEFT) and the refusals. The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import copy
import warnings
from importlib.metadata import entry_points

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from peft_core import ConfigError, PeftModel, get_peft_method, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import assert_same_seeded_start, both_ways, hf_peft
from peft_supertuning import SupertuningConfig, SupertuningLinear

torch.set_num_threads(1)


def _adapted(**overrides) -> tuple[nn.Sequential, nn.Module]:
    config = SupertuningConfig(**{"sparsity": 0.8, "target_modules": ["0", "2"], "init_weights": False, **overrides})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return models.adapted_copy(lambda: nn.Sequential(nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3)), config)


@pytest.mark.parametrize("select_top", [True, False])
def test_support_is_the_largest_or_smallest_entries(select_top):
    base, model = _adapted(select_top=select_top)
    layer: SupertuningLinear = model.base_model.model[0]
    positions = layer.supertuning_indices["default"]
    # HF's count, int(numel * (1 - sparsity)): 40 * (1 - 0.8) is 7.999..., so 7 entries
    assert positions.dtype == torch.int32 and positions.numel() == int(40 * (1 - 0.8)) == 7
    magnitudes = base[0].weight.detach().abs().flatten()
    chosen = set(positions.tolist())
    inside = magnitudes[sorted(chosen)]
    outside = magnitudes[[i for i in range(40) if i not in chosen]]
    assert (inside.min() >= outside.max()) if select_top else (inside.max() <= outside.min())


@pytest.mark.parametrize("overrides", [{}, {"r": 2}, {"r": 2, "lora_alpha": 0.5}])
def test_forward_is_the_weight_with_values_at_their_positions(overrides):
    base, model = _adapted(**overrides)
    layer: SupertuningLinear = model.base_model.model[0]
    weight = base[0].weight.detach().clone()
    for position, value in zip(layer.supertuning_indices["default"].tolist(), layer.supertuning_values["default"].tolist()):
        weight[position // 8, position % 8] += value
    if "r" in overrides:
        alpha = overrides.get("lora_alpha", 2 * overrides["r"])  # Hugging Face PEFT's default: 2 r
        assert layer.supertuning_lora_alpha["default"] == alpha
        weight += alpha / 2 * layer.supertuning_lora_B["default"].weight.detach() @ layer.supertuning_lora_A["default"].weight.detach()
    x = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, weight, base[0].bias), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer.get_delta_weight("default"), weight - base[0].weight, atol=1e-6, rtol=1e-5)


def test_positions_recomputed_on_load_when_not_saved(tmp_path):
    base, model = _adapted(save_precomputed_indices=False)
    model.eval()
    x = torch.randn(3, 8)
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(tmp_path)
    assert not [k for k in load_file(tmp_path / "adapter_model.safetensors") if "indices" in k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    assert "base_model.model.0.supertuning_indices.default" in dict(loaded.named_buffers())


@pytest.mark.skipif(hf_peft() is None, reason="Hugging Face PEFT is not installed")
def test_files_without_positions_load_both_ways_with_hugging_face(tmp_path):
    peft = hf_peft()
    kwargs = dict(sparsity=0.9, r=2, save_precomputed_indices=False, init_weights=False, target_modules=["q_proj", "v_proj"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = SupertuningConfig(**kwargs), peft.SupertuningConfig(**kwargs)

    def run(model):
        with torch.no_grad():
            return model(**models.LLAMA.make_inputs()).logits

    assert both_ways(models.LLAMA.build, ours, theirs, run, tmp_path) == []


@pytest.mark.skipif(hf_peft() is None, reason="Hugging Face PEFT is not installed")
def test_seeded_random_start_equals_hugging_faces():
    base = nn.Sequential(nn.Linear(8, 5), nn.Linear(5, 3))
    kwargs = dict(sparsity=0.7, r=2, target_modules=["0", "1"], init_weights=False)
    ours, theirs = SupertuningConfig(**kwargs), hf_peft().SupertuningConfig(**kwargs)
    assert_same_seeded_start(lambda: copy.deepcopy(base), ours, theirs, 4)


def test_registration_and_refusals():
    assert get_peft_method("supertuning").config_cls is SupertuningConfig
    assert any(ep.name == "supertuning" for ep in entry_points(group="peft.methods"))
    with pytest.raises(ConfigError, match="lora_alpha"):
        SupertuningConfig(lora_alpha=8.0)
    base = nn.Sequential(nn.Linear(4, 3))
    before = copy.deepcopy(base.state_dict())
    with pytest.raises(ConfigError, match="leaves no trainable entry"):
        get_peft_model(base, SupertuningConfig(sparsity=0.95, target_modules=["0"]))  # 12 entries * 0.05 < 1
    assert isinstance(base[0], nn.Linear) and all(torch.equal(before[k], base.state_dict()[k]) for k in before)
    _, model = _adapted()
    with pytest.raises(ConfigError, match="save_precomputed_indices"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.add_adapter("other", SupertuningConfig(save_precomputed_indices=False, target_modules=["0"]))
