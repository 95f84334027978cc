"""Behaviour and wording that programs written against Hugging Face PEFT rely on (found by running its own
test suite against peft-compat): the messages keep HF's text first, then say how to fix."""

from __future__ import annotations

import warnings

import pytest
import torch

from peft_core import PeftModel, get_peft_model
from peft_core.errors import AdapterStateError


def _two_adapters(toy, mlp, **kwargs) -> PeftModel:
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False, **kwargs))
    model.add_adapter("other", toy.ToyConfig(target_modules=["lin0"], init_weights=False, **kwargs))
    return model


def test_has_active_enabled_adapter_follows_nested_disable_blocks(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0", "lin1"]))
    assert model.has_active_enabled_adapter
    with model.disable_adapter():
        assert not model.has_active_enabled_adapter
        with model.disable_adapter():
            assert not model.has_active_enabled_adapter
        assert not model.has_active_enabled_adapter  # leaving the inner block keeps them disabled
    assert model.has_active_enabled_adapter


def test_disable_block_warns_when_layers_are_partly_disabled_and_restores_them(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0", "lin1"]))
    layers = list(model.base_model.adapter_modules())
    layers[0].enable_adapters(False)
    with pytest.warns(UserWarning, match="some adapter layers that are enabled and others that are disabled"):
        with model.disable_adapter():
            assert all(layer.disable_adapters for layer in layers)
    assert [layer.disable_adapters for layer in layers] == [True, False]


def test_merging_twice_warns_with_hugging_face_wording_and_changes_nothing(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    x = torch.randn(3, 8)
    model.merge_adapter()
    before = model(x)
    with pytest.warns(UserWarning, match="All adapters are already merged, nothing to do"):
        model.merge_adapter()
    assert torch.equal(model(x), before)


def test_merging_one_more_adapter_names_the_merged_ones(toy, mlp):
    model = _two_adapters(toy, mlp)
    model.merge_adapter(["default"])
    with pytest.warns(UserWarning, match="Already following adapters were merged default. You are now additionally merging other"):
        model.merge_adapter(["default", "other"])
    layer = model.base_model.model.lin0
    assert layer.merged_adapters == ["default", "other"]


def test_deleting_a_merged_adapter_is_refused_in_hugging_face_wording(toy, mlp):
    model = _two_adapters(toy, mlp)
    model.merge_adapter(["other"])
    with pytest.raises(AdapterStateError, match=r"Cannot delete adapter\(s\) \['other'\] while they are merged\. Please unmerge them first") as err:
        model.delete_adapter("other")
    assert "unmerge_adapter()" in str(err.value)
    assert set(model.peft_config) == {"default", "other"}
    with pytest.raises(ValueError, match="Adapter unknown does not exist; existing adapters"):
        model.delete_adapter("unknown")


def test_two_active_adapters_cannot_share_a_modules_to_save_copy(toy, mlp):
    model = _two_adapters(toy, mlp, modules_to_save=["head"])
    with pytest.raises(ValueError, match="Only one adapter can be set at a time for ModulesToSaveWrapper"):
        model.base_model.set_adapter(["default", "other"])
    assert model.active_adapters == ["default"]  # refused before anything changed
    assert model.base_model.model.head.active_adapters == ["default"]


def test_two_active_adapters_with_distinct_modules_to_save_work(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], modules_to_save=["lin1"]))
    model.add_adapter("other", toy.ToyConfig(target_modules=["lin0"], modules_to_save=["head"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.base_model.set_adapter(["default", "other"])
    assert model.active_adapters == ["default", "other"]


@pytest.mark.parametrize("is_trainable", [True, False])
def test_load_adapter_is_trainable_makes_the_inactive_adapter_trainable(toy, mlp, tmp_path, is_trainable):
    config = toy.ToyConfig(target_modules=["lin0"], modules_to_save=["lin1"])
    get_peft_model(mlp, config).save_pretrained(tmp_path)
    model = PeftModel.from_pretrained(type(mlp)(), tmp_path, is_trainable=True)
    model.load_adapter(tmp_path, adapter_name="other", is_trainable=is_trainable)
    assert model.active_adapters == ["default"]
    other = [p for n, p in model.named_parameters() if ".other" in n]
    default = [p for n, p in model.named_parameters() if ".default" in n]
    assert other and all(p.requires_grad == is_trainable for p in other)
    assert default and all(p.requires_grad for p in default)
