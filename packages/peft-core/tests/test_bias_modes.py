"""The generic `bias` modes every method with a `bias` config field gets from BaseTuner."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch

from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict, inject_adapter_in_model
from peft_core.registry import register_peft_method, unregister_peft_method


@pytest.fixture
def biased(toy):
    @dataclass
    class BiasedConfig(toy.ToyConfig):
        peft_type: str = "BIASED"
        bias: str = "none"

    class BiasedModel(toy.ToyModel):
        prefix = "biased_"

    register_peft_method(name="biased", config_cls=BiasedConfig, model_cls=BiasedModel, plugin_api=">=1,<2")
    yield BiasedConfig
    unregister_peft_method("biased")


def _trainable(model):
    return sorted(n for n, p in model.named_parameters() if p.requires_grad and ".toy_" not in n and "modules_to_save" not in n)


def test_none(biased, mlp):
    model = get_peft_model(mlp, biased(target_modules=["lin0"]))
    assert _trainable(model) == []
    assert all(".toy_" in k for k in get_peft_model_state_dict(model))


def test_only_mode_covers_targeted_layers(biased, mlp):
    model = get_peft_model(mlp, biased(target_modules=["lin0"], bias="biased_only"))
    assert _trainable(model) == ["base_model.model.lin0.base_layer.bias"]
    assert "base_model.model.lin0.base_layer.bias" in get_peft_model_state_dict(model)


def test_all_mode_covers_every_bias_and_modules_to_save_copies(biased, mlp, tmp_path):
    base_state = copy.deepcopy(mlp.state_dict())
    model = get_peft_model(mlp, biased(target_modules=["lin0"], bias="all", modules_to_save=["head"], init_weights=False))
    assert _trainable(model) == [
        "base_model.model.head.original_module.bias",
        "base_model.model.lin0.base_layer.bias",
        "base_model.model.lin1.bias",
        "base_model.model.lora_proj.bias",
    ]
    state = get_peft_model_state_dict(model)
    assert {"base_model.model.head.original_module.bias", "base_model.model.head.modules_to_save.bias"} <= set(state)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.add_(0.5)
    x = torch.randn(2, 8)
    expected = model(x)
    model.save_pretrained(tmp_path)
    from core_test_models import MLP

    fresh = MLP()
    fresh.load_state_dict(base_state)
    loaded = PeftModel.from_pretrained(fresh, tmp_path)
    assert torch.equal(loaded(x), expected)


def test_only_one_adapter_may_use_bias(biased, mlp):
    model = get_peft_model(mlp, biased(target_modules=["lin0"], bias="all"))
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("b", biased(target_modules=["lin1"], bias="biased_only"))
    assert list(model.peft_config) == ["default"]


def test_disabling_with_bias_warns(biased, mlp):
    model = get_peft_model(mlp, biased(target_modules=["lin0"], bias="all"))
    with pytest.warns(UserWarning, match="bias='all'"):
        with model.disable_adapter():
            pass


def test_inject_adapter_in_model_refuses_tuner_owned_state(biased, mlp):
    with pytest.raises(ValueError, match="use get_peft_model"):
        inject_adapter_in_model(biased(target_modules=["lin0"], bias="all", modules_to_save=["head"]), mlp)
    assert type(mlp.lin0).__name__ == "Linear"  # nothing left behind


def test_mixed_batch_through_modules_to_save_needs_batch_first_inputs(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], modules_to_save=["head"])).eval()
    wrapper = model.base_model.model.head
    from peft_core.tuners.mixed_batch import batch_plan

    with batch_plan(["default", "__base__"]):
        with pytest.raises(ValueError, match="first dimension"):
            wrapper(torch.randn(3, 8))


def test_legacy_bias_key_goes_to_base_layer(biased, mlp):
    """Files from PEFT <= 0.6 saved `<target>.bias`; with a bias mode that saves it, it loads into the base layer."""
    from peft_core import set_peft_model_state_dict

    model = get_peft_model(mlp, biased(target_modules=["lin0"], bias="toy_only"))
    state = get_peft_model_state_dict(model)
    state.pop("base_model.model.lin0.base_layer.bias")
    state["base_model.model.lin0.bias"] = torch.full((16,), 7.0)  # PEFT <= 0.6 naming
    set_peft_model_state_dict(model, state)
    assert torch.all(model.base_model.model.lin0.base_layer.bias == 7.0)
