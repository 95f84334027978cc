"""Mixed-method models (`get_peft_model(..., mixed=True)`), with two test-only methods (tests/_support/peft_toy_mix).

What core guarantees whatever the methods: registration decides who may join; layers nest (newest
outermost) and compute on top of each other; saved keys are those of a single-method file; merging goes
innermost first; a failed add leaves the other adapters' layers in place.
"""

from __future__ import annotations

import copy

import peft_toy_mix  # noqa: F401  (registers "toyadd" and "toyscale")
import pytest
import torch
from peft_toy_mix import ToyAddConfig, ToyAddLinear, ToyScaleConfig, ToyScaleLinear
from safetensors.torch import load_file

from peft_core import BaseTunerLayer, ConfigError, PeftMixedModel, UnsupportedOperationError, get_peft_model
from peft_core.state_dict import get_peft_model_state_dict, set_peft_model_state_dict
from peft_core.tuners.tuner import nested_layers


def _mixed(mlp, *, add_targets=("lin0", "lin1"), scale_targets=("lin1", "head")):
    torch.manual_seed(3)
    model = get_peft_model(mlp, ToyAddConfig(target_modules=list(add_targets), init_weights=False), mixed=True)
    model.add_adapter("scale", ToyScaleConfig(target_modules=list(scale_targets), init_weights=False))
    model.set_adapter(["default", "scale"])
    return model.eval()


def _manual(base, model, x):
    """The outputs the nesting promises, computed by hand from the adapters' tensors: each layer's
    adapters act on what the layer inside it gives, innermost first."""
    modules = dict(model.base_model.model.named_modules())

    def lin(name, h):
        y = getattr(base, name)(h)
        layer = modules[name]
        if not isinstance(layer, BaseTunerLayer):
            return y
        for inner in reversed(nested_layers(layer)):
            if isinstance(inner, ToyAddLinear) and "default" in inner.toyadd_A:
                y = y + h @ (inner.toyadd_B["default"] @ inner.toyadd_A["default"]).T
            if isinstance(inner, ToyScaleLinear) and "scale" in inner.toyscale_s:
                bias = getattr(base, name).bias
                y = (y - bias) * (1 + inner.toyscale_s["scale"]) + bias
        return y

    h = lin("lora_proj", lin("lin0", x))
    return lin("head", lin("lin1", torch.relu(h)))


def test_get_peft_model_mixed_returns_a_mixed_model_whose_layers_nest(mlp):
    base = copy.deepcopy(mlp)
    model = _mixed(mlp)
    assert isinstance(model, PeftMixedModel)
    lin1 = model.base_model.model.lin1
    assert isinstance(lin1, ToyScaleLinear) and isinstance(lin1.base_layer, ToyAddLinear)  # newest outermost
    assert isinstance(model.base_model.model.head, ToyScaleLinear)
    x = torch.randn(4, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _manual(base, model, x))
        with model.disable_adapter():
            assert torch.equal(model(x), base(x))


def test_only_adapters_of_the_active_set_run(mlp):
    base = copy.deepcopy(mlp)
    model = _mixed(mlp)
    x = torch.randn(4, 8)
    with torch.no_grad():
        both = model(x)
        model.set_adapter("default")
        only_add = model(x)
        model.set_adapter("scale")
        only_scale = model(x)
    assert not torch.allclose(both, only_add) and not torch.allclose(both, only_scale)
    # the order of the names does not matter: adapters run in the order they were added
    model.set_adapter(["scale", "default"])
    with torch.no_grad():
        assert torch.equal(model(x), both)
    with torch.no_grad():
        assert not torch.allclose(only_add, base(x))
    model.set_adapter(["default", "scale"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("toyadd" in n or "toyscale" in n for n in trainable)
    model.set_adapter(["default", "scale"], inference_mode=True)
    assert not any(p.requires_grad for p in model.parameters())


def test_methods_that_did_not_opt_in_are_refused(mlp, toy):
    with pytest.raises(ConfigError, match="is_mixed_compatible"):
        get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]), mixed=True)
    model = _mixed(copy.deepcopy(mlp))
    with pytest.raises(ConfigError, match="is_mixed_compatible"):
        model.add_adapter("toy", toy.ToyConfig(target_modules=["lin0"]))
    assert list(model.peft_config) == ["default", "scale"]


def test_a_single_method_model_refuses_to_nest_another_methods_layer(mlp):
    model = get_peft_model(mlp, ToyAddConfig(target_modules=["lin0"]))
    inner = model.base_model.model
    with pytest.raises(ConfigError, match="mixed=True"):
        get_peft_model(inner, ToyScaleConfig(target_modules=["lin0"]))


def test_saved_files_hold_single_method_keys_and_reload_to_the_same_outputs(mlp, tmp_path):
    base = copy.deepcopy(mlp)
    model = _mixed(mlp)
    x = torch.randn(4, 8)
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(tmp_path)
    add_keys = set(load_file(tmp_path / "adapter_model.safetensors"))
    assert add_keys == {
        "base_model.model.lin0.toyadd_A",
        "base_model.model.lin0.toyadd_B",
        "base_model.model.lin1.toyadd_A",  # nested under toyscale in the model: saved without `base_layer.`
        "base_model.model.lin1.toyadd_B",
    }
    assert set(load_file(tmp_path / "scale" / "adapter_model.safetensors")) == {
        "base_model.model.lin1.toyscale_s",
        "base_model.model.head.toyscale_s",
    }
    reloaded = PeftMixedModel.from_pretrained(copy.deepcopy(base), tmp_path)
    reloaded.load_adapter(tmp_path / "scale", "scale")
    reloaded.set_adapter(["default", "scale"])
    with torch.no_grad():
        assert torch.equal(reloaded(x), expected)


def test_a_nested_adapter_loads_from_its_in_model_key_form_too(mlp):
    model = _mixed(mlp)
    state = get_peft_model_state_dict(model, adapter_name="default")
    in_model_form = {k.replace("lin1.toyadd", "lin1.base_layer.toyadd"): v for k, v in state.items()}
    with torch.no_grad():
        for p in model.base_model.model.lin1.base_layer.toyadd_B.values():
            p.zero_()
    set_peft_model_state_dict(model, in_model_form, adapter_name="default")
    assert torch.equal(model.base_model.model.lin1.base_layer.toyadd_B["default"], state["base_model.model.lin1.toyadd_B"])


def test_merge_and_unload_merges_innermost_first(mlp):
    # toyscale (outer) scales what toyadd (inner) gives: merging the scale first would scale W alone
    model = _mixed(mlp)
    x = torch.randn(4, 8)
    with torch.no_grad():
        expected = model(x)
        model.merge_adapter()
        torch.testing.assert_close(model(x), expected)
        model.unmerge_adapter()
        torch.testing.assert_close(model(x), expected)
        merged = model.merge_and_unload()
        torch.testing.assert_close(merged(x), expected)
    assert isinstance(merged.lin1, torch.nn.Linear)


def test_merging_an_outer_adapter_over_an_unmerged_inner_one_is_refused_unless_both_add(mlp):
    model = _mixed(mlp)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="do not just add a weight delta"):
        model.merge_adapter(adapter_names=["scale"])
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # nothing merged
    model.merge_adapter(adapter_names=["default"])  # inner first: fine
    x = torch.randn(4, 8)
    with torch.no_grad():
        model.unmerge_adapter()
        expected = model(x)
        model.merge_adapter(adapter_names=["default"])
        torch.testing.assert_close(model(x), expected)


def test_mixed_batches_apply_each_rows_adapter_through_nested_layers(mlp):
    model = _mixed(mlp)
    model.add_adapter("other", ToyAddConfig(target_modules=["lin1"], init_weights=False))
    x = torch.randn(4, 8)
    names = ["default", "scale", "__base__", "other"]
    with torch.no_grad():
        mixed = model(x, adapter_names=names)
        for row, name in enumerate(names):
            if name == "__base__":
                with model.disable_adapter():
                    want = model(x)
            else:
                model.set_adapter(name)
                want = model(x)
            torch.testing.assert_close(mixed[row], want[row], msg=name)


def test_delete_adapter_takes_a_list_and_weighted_adapters_are_refused(mlp):
    model = _mixed(mlp)
    model.add_adapter("other", ToyAddConfig(target_modules=["lin1"]))
    model.delete_adapter(["default", "other"])
    assert list(model.peft_config) == ["scale"]
    assert not any(m.has_adapter("default") for m in model.base_model.tuner_layers())
    with pytest.raises(UnsupportedOperationError):
        model.add_weighted_adapter(["scale"], [1.0], "w")


def test_a_failed_add_keeps_the_other_adapters_layers(mlp):
    model = _mixed(mlp)
    x = torch.randn(4, 8)
    with torch.no_grad():
        expected = model(x)
    with pytest.raises(ValueError, match="can't adapt"):
        model.add_adapter("bad", ToyAddConfig(target_modules=["lin1", "relu"]))
    assert list(model.peft_config) == ["default", "scale"]
    lin1 = model.base_model.model.lin1
    assert isinstance(lin1, ToyScaleLinear) and isinstance(lin1.base_layer, ToyAddLinear)
    assert not lin1.base_layer.has_adapter("bad")
    with torch.no_grad():
        assert torch.equal(model(x), expected)
