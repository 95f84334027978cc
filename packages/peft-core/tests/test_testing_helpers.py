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
