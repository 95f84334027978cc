"""peft_core.hotswap's method-independent checks, with the test-only toy method (which declares no
hotswap support) and a support declared for the test."""

from __future__ import annotations

import copy

import pytest
import torch

from peft_core import get_peft_model
from peft_core.errors import HotswapError
from peft_core.hotswap import (
    HotswapSupport,
    check_hotswap_configs_compatible,
    copy_padded,
    hotswap_adapter,
    hotswap_adapter_from_state_dict,
    prepare_model_for_compiled_hotswap,
)
from peft_core.state_dict import get_peft_model_state_dict


def test_a_method_without_hotswap_support_is_refused(mlp, toy, tmp_path):
    config = toy.ToyConfig(target_modules=["lin0"])
    with pytest.raises(HotswapError, match="declares no hotswap support"):
        check_hotswap_configs_compatible(config, toy.ToyConfig(target_modules=["lin0"]))
    model = get_peft_model(mlp, config)
    model.save_pretrained(tmp_path)
    with pytest.raises(HotswapError, match="declares no hotswap support"):
        hotswap_adapter(model, tmp_path, "default")
    with pytest.raises(HotswapError, match="No adapter layers"):
        prepare_model_for_compiled_hotswap(model)


def test_different_methods_are_incompatible(toy):
    from dataclasses import dataclass

    from peft_core import PeftConfig

    @dataclass
    class Other(PeftConfig):
        peft_type: str = "OTHER_FOR_HOTSWAP"

    with pytest.raises(HotswapError, match="Incompatible PEFT types"):
        check_hotswap_configs_compatible(toy.ToyConfig(), Other())


def test_copy_padded_zero_fills_the_rest():
    old = torch.ones(3, 4)
    copy_padded(old, torch.full((2, 2), 5.0))
    assert torch.equal(old, torch.tensor([[5.0, 5, 0, 0], [5, 5, 0, 0], [0, 0, 0, 0]]))


def test_generic_swap_with_a_declared_support(mlp, toy, monkeypatch):
    monkeypatch.setattr(toy.ToyModel, "hotswap_support", HotswapSupport(), raising=False)
    torch.manual_seed(0)
    model = get_peft_model(copy.deepcopy(mlp), toy.ToyConfig(target_modules=["lin0", "lin1"], init_weights=False))
    donor = get_peft_model(copy.deepcopy(mlp), toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    x = torch.randn(3, 8)
    state = get_peft_model_state_dict(donor)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(HotswapError, match="unexpected keys"):
        hotswap_adapter_from_state_dict(model, {**state, "base_model.model.head.toy_A.weight": torch.ones(2, 8)}, "default", donor.peft_config["default"])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    hotswap_adapter_from_state_dict(model, state, "default", donor.peft_config["default"])
    lin1 = model.base_model.model.lin1
    assert all(not p.any() for p in lin1.adapter_parameters("default"))  # not targeted by the new adapter: cleared
    with torch.no_grad():
        # toy's lin1 with zero tensors adds nothing, so the model now equals the donor
        assert torch.allclose(model(x), donor(x), atol=1e-6)
