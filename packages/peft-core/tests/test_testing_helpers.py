"""peft_core.testing: the smoke test method packages and the release tool run."""

from __future__ import annotations

import pytest

from peft_core.testing import example_config, smoke_test


def test_smoke_test_passes_for_a_working_method(toy):
    smoke_test("toy")


def test_example_config_turns_off_noop_init(toy):
    config = example_config("toy", ["lin0"])
    assert config.init_weights is False and config.target_modules == {"lin0"}


def test_smoke_test_catches_a_broken_save(toy, monkeypatch):
    monkeypatch.setattr(toy.ToyLinear, "adapter_layer_names", ("toy_A", "toy_B"))  # forgets to save toy_scale
    with pytest.raises(AssertionError, match="outputs differ"):
        smoke_test("toy")


def test_smoke_test_with_a_transformers_model(toy):
    from core_test_models import make_tiny_llama
    import torch

    smoke_test(
        "toy",
        target_modules=["q_proj"],
        model_factory=make_tiny_llama,
        inputs_factory=lambda: torch.randint(0, 128, (2, 5)),
    )


def test_as_if_trained_fills_only_marked_tensors_the_same_way_every_time():
    import torch
    from torch import nn

    from peft_core.testing.trained import as_if_trained

    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))

    first, second = build(), build()
    untouched = first[0].weight.clone()
    randomize = as_if_trained("1.", scale=0.5, offset=lambda name: 1.0 if name.endswith("weight") else 0.0)
    randomize(first)
    randomize(second)
    assert torch.equal(first[0].weight, untouched)  # not marked
    assert torch.equal(first[1].weight, second[1].weight) and torch.equal(first[1].bias, second[1].bias)
    assert not torch.equal(first[1].weight, torch.ones(3))  # noise was added
    gen = torch.Generator().manual_seed(3)  # the same draws, in name order: 1.bias then 1.weight
    expected_bias = 0.5 * torch.randn(3, generator=gen)
    expected_weight = 1.0 + 0.5 * torch.randn(3, generator=gen)
    assert torch.equal(first[1].bias, expected_bias) and torch.equal(first[1].weight, expected_weight)
