"""Small core helpers methods share: per-group mixed batches and the load-time remap hook."""

from __future__ import annotations

import pytest
import torch

from peft_core import AdapterLoadError, ConfigError, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft_core import BaseTunerLayer
from peft_core.errors import unsupported_target
from peft_core.tuners.mixed_batch import (
    BatchPlan,
    add_adapter_deltas,
    add_per_group,
    batch_plan,
    run_per_group,
    update_adapter_outputs,
)


def test_run_per_group_routes_rows():
    plan = BatchPlan.from_names(["a", "__base__", "a", "b", "zzz"])
    x = torch.arange(5.0).unsqueeze(1)
    offsets = {"a": 100.0, "b": 200.0}

    def run(rows, names):
        return rows + (offsets[names[0]] if names else 0.0)

    out = run_per_group(plan, x, run, held={"a", "b"})
    assert out.squeeze(1).tolist() == [100.0, 1.0, 102.0, 203.0, 4.0]


class _Logged(BaseTunerLayer):
    """A test layer: core makes its ParameterDict (named by `adapter_layer_names`); `log` holds the calls it records."""

    container_types = {}

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.log = []


class _Shift(_Logged):
    """Adds its adapters' offsets to the base output; only `adapted_forward` is written (the rest is core's).
    Logs the adapter names of each `adapted_forward` call."""

    adapter_layer_names = ("shift",)

    def adapted_forward(self, x, adapter_names, *args, **kwargs):
        self.log.append(list(adapter_names))
        out = self.base_layer(x, *args, **kwargs)
        for name in adapter_names:
            out = out + self.shift[name]
        return out

    def merge_adapter_weights(self, adapter_name, safe_merge):
        self.get_base_layer().bias.data += self.shift[adapter_name].data

    def unmerge_adapter_weights(self, adapter_name):
        self.get_base_layer().bias.data -= self.shift[adapter_name].data


def test_inherited_forward_calls_adapted_forward_with_the_right_adapters():
    base = torch.nn.Linear(2, 2)
    layer = _Shift(base)
    layer.shift["a"] = torch.nn.Parameter(torch.full((2,), 10.0))
    layer.shift["b"] = torch.nn.Parameter(torch.full((2,), 100.0))
    x = torch.randn(4, 2)
    with torch.no_grad():
        plain = base(x)
        layer.set_adapter(["a", "gone", "b"])  # a name this layer doesn't hold is left out
        assert torch.allclose(layer(x), plain + 110.0) and layer.log[-1] == ["a", "b"]
        with batch_plan(["b", "__base__", "a", "zzz"]):
            mixed = layer(x)
        assert layer.log[-4:] == [["b"], [], ["a"], []]  # one call per group; "zzz" isn't held: no adapter
        assert torch.equal(mixed, plain + torch.tensor([[100.0], [0.0], [10.0], [0.0]]))
        layer.set_adapter("a")
        layer.merge()
        calls = len(layer.log)
        assert torch.allclose(layer(x), plain + 10.0) and len(layer.log) == calls  # merged: the base layer only
        layer.enable_adapters(False)
        assert torch.allclose(layer(x), plain) and not layer.merged and len(layer.log) == calls  # disabled: unmerged




def test_add_per_group_adds_each_groups_delta_to_its_rows():
    plan = BatchPlan.from_names(["a", "__base__", "b", "a", "zzz"])
    x = torch.arange(5.0).unsqueeze(1)
    base = x * 10
    out = add_per_group(plan, x, base, held={"a", "b"}, delta=lambda rows, name: rows + (0.5 if name == "a" else 0.25))
    assert out.squeeze(1).tolist() == [0.5, 10.0, 22.25, 33.5, 40.0]
    assert base.squeeze(1).tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]  # not modified
    assert add_per_group(plan, x, base, held=set(), delta=None) is base  # nothing held: the same tensor
    with pytest.raises(ValueError, match="toy layer got an input with 2 rows"):
        add_per_group(plan, x[:2], base[:2], held={"a"}, delta=lambda rows, name: rows, what="a toy layer")



def test_add_adapter_deltas_sums_active_held_adapters_or_follows_the_batch_plan():
    x = torch.arange(3.0).unsqueeze(1)
    base = x * 10
    delta = lambda rows, name: rows * 0 + {"a": 1.0, "b": 2.0, "c": 4.0}[name]  # noqa: E731
    # no plan: every active adapter the layer holds ("c" is not held, "zzz" not active)
    out = add_adapter_deltas(x, base, ["a", "b", "c"], {"a", "b", "zzz"}, delta)
    assert out.squeeze(1).tolist() == [3.0, 13.0, 23.0]
    with batch_plan(["b", "__base__", "a"]):  # a mixed batch: each row its own adapter, whatever is active
        out = add_adapter_deltas(x, base, ["a"], {"a", "b"}, delta)
    assert out.squeeze(1).tolist() == [2.0, 10.0, 21.0]


def test_update_adapter_outputs_applies_non_additive_updates_in_turn_or_per_group():
    x = torch.arange(3.0).unsqueeze(1)
    base = x + 1
    scale = {"a": 2.0, "b": 3.0}
    update = lambda out, rows, name: out * scale[name] + rows  # noqa: E731 - needs both the output and x
    # no plan: active held adapters in order, each on the previous one's output
    out = update_adapter_outputs(x, base, ["a", "b", "c"], {"a", "b"}, update)
    assert out.squeeze(1).tolist() == [(1 * 2 + 0) * 3 + 0, (2 * 2 + 1) * 3 + 1, (3 * 2 + 2) * 3 + 2]
    with batch_plan(["b", "__base__", "a"]):
        out = update_adapter_outputs(x, base.to(torch.float16), ["a"], {"a", "b"}, update)
    assert out.dtype == torch.float16  # each group's rows are cast back to the output's dtype
    assert out.squeeze(1).tolist() == [1 * 3 + 0, 2.0, 3 * 2 + 2]
    assert base.squeeze(1).tolist() == [1.0, 2.0, 3.0]  # not modified


def test_unsupported_target_names_the_module_the_method_and_what_it_takes():
    error = unsupported_target("model.layers.0.emb", torch.nn.Embedding(2, 2), "Toy", "torch.nn.Linear only")
    assert isinstance(error, ConfigError)
    assert "'model.layers.0.emb' (Embedding) is not supported by Toy; supported: torch.nn.Linear only" in str(error)
    assert "target_modules" in str(error)

def test_remap_hook_sees_the_file_before_matching(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    state = {k.replace("toy_A", "old_A"): v for k, v in get_peft_model_state_dict(model).items()}
    with pytest.raises(AdapterLoadError):
        set_peft_model_state_dict(model, state)

    def remap(adapter_name, incoming):
        return {k.replace("old_A", "toy_A"): v for k, v in incoming.items()}

    model.base_model.remap_state_dict_for_load = remap
    set_peft_model_state_dict(model, state)


def test_move_adapter_to_base_device_keeps_dtype(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    layer = model.base_model.model.lin0
    layer.toy_A["default"].to(torch.float64)
    layer.move_adapter_to_base_device("default")
    assert layer.toy_A["default"].weight.dtype == torch.float64


def test_parameter_dict_attribute_names_are_refused(toy, mlp):
    for name in ("copy", "setdefault", "popitem"):
        with pytest.raises(ValueError, match="collides"):
            get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]), adapter_name=name)


def test_save_pretrained_refuses_unknown_arguments(toy, mlp, tmp_path):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    with pytest.raises(TypeError, match="push_to_hub_typo"):
        model.save_pretrained(tmp_path, push_to_hub_typo=True)
    assert not any(tmp_path.iterdir())


def test_weight_conversion_needs_method_support(toy, mlp, tmp_path):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    with pytest.raises(ValueError, match="does not support path_initial_model_for_weight_conversion"):
        model.save_pretrained(tmp_path, path_initial_model_for_weight_conversion=tmp_path / "init")


def test_generate_with_adapter_names_and_beams(toy, tiny_llama):
    ids = torch.randint(0, 128, (2, 4))
    model = get_peft_model(tiny_llama, toy.ToyConfig(init_weights=False)).eval()  # task_type None
    model.add_adapter("b", toy.ToyConfig(target_modules=["k_proj"], init_weights=False))
    kwargs = dict(max_new_tokens=3, do_sample=False, num_beams=2, pad_token_id=0)
    mixed = model.generate(input_ids=ids, adapter_names=["b", "default"], **kwargs)
    model.set_adapter("b")
    first = model.generate(input_ids=ids[:1], **kwargs)
    model.set_adapter("default")
    second = model.generate(input_ids=ids[1:], **kwargs)
    assert torch.equal(mixed[0], first[0]) and torch.equal(mixed[1], second[0])


def test_layer_class_for_picks_by_type_and_refuses_others_in_one_wording():
    from peft_core.tuners.layer_classes import layer_class_for

    classes = ((torch.nn.Linear, "linear layer"), (torch.nn.Conv2d, "conv layer"))
    assert layer_class_for("M", "a.b", torch.nn.Linear(2, 2), classes) == "linear layer"
    assert layer_class_for("M", "a.b", torch.nn.Conv2d(1, 1, 1), classes) == "conv layer"
    with pytest.raises(TypeError, match=r"Target module 'a.b' \(Embedding\) is not supported by M: only torch.nn.Linear and "
                       r"torch.nn.Conv2d are. Adjust target_modules."):
        layer_class_for("M", "a.b", torch.nn.Embedding(3, 2), classes)
    with pytest.raises(TypeError, match=r"only torch.nn.Linear is\."):
        layer_class_for("M", "x", torch.nn.LayerNorm(2), classes[:1])


def test_check_layer_selection_and_bias_mode_follow_hf_rules():
    from dataclasses import dataclass

    from peft_core import ConfigError
    from peft_core.tuners.bias import check_bias_mode
    from peft_core.tuners.matching import check_layer_selection

    @dataclass
    class Cfg:
        target_modules: object = None
        layers_to_transform: object = None
        layers_pattern: object = None
        bias: object = "none"

    check_layer_selection(Cfg(target_modules=["q"], layers_to_transform=[0], layers_pattern="layers"))
    with pytest.raises(ConfigError, match=r"Cfg: `layers_to_transform` cannot be used when `target_modules` is a str"):
        check_layer_selection(Cfg(target_modules=".*q", layers_to_transform=0))
    check_layer_selection(Cfg(target_modules=".*q", layers_to_transform=0), regex_excludes_layers=False)
    with pytest.raises(ConfigError, match=r"Cfg.layers_pattern needs layers_to_transform"):
        check_layer_selection(Cfg(layers_pattern="layers"))
    check_layer_selection(Cfg(layers_pattern="layers"), pattern_needs_layers=False)
    for ok in ("none", "all", "x_only", "any_only"):
        check_bias_mode(Cfg(bias=ok), "x_only")
    for bad in ("some", None, 1):
        with pytest.raises(ConfigError, match=r"Cfg.bias must be 'none', 'all' or 'x_only'"):
            check_bias_mode(Cfg(bias=bad), "x_only")


class _Recorder(_Logged):
    """Logs update_layer calls; the adapter's effect doesn't matter here."""

    adapter_layer_names = ("rec",)

    def update_layer(self, adapter_name, config):
        self.log.append((adapter_name, config))
        self.rec[adapter_name] = torch.nn.Parameter(torch.zeros(1))


def _layer_class_tuner(nesting_refused):
    from dataclasses import dataclass

    from peft_core.tuners.layer_classes import LayerClassTuner

    class Tuner(LayerClassTuner):
        method_label = "Toy"
        layer_classes = ((torch.nn.Linear, _Recorder),)
        no_nesting_types = (torch.nn.Linear,) if nesting_refused else ()

    @dataclass
    class Config:
        fan_in_fan_out: bool = True

    tuner = Tuner.__new__(Tuner)  # only _create_and_replace is exercised: no model to adapt
    torch.nn.Module.__init__(tuner)
    tuner.allow_nesting = True
    return tuner, Config()


def test_layer_class_tuner_wraps_adds_reconciles_and_refuses_nesting_where_declared():
    tuner, config = _layer_class_tuner(nesting_refused=False)
    parent = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to False"):
        tuner._create_and_replace(config, "a", parent[0], "0", parent, "0")
    layer = parent[0]
    assert isinstance(layer, _Recorder) and layer.log == [("a", config)] and config.fan_in_fan_out is False
    tuner._create_and_replace(config, "b", layer, "0", parent, "0")  # a second adapter goes to the same layer
    assert parent[0] is layer and [name for name, _ in layer.log] == ["a", "b"]
    with pytest.raises(TypeError, match=r"\(Embedding\) is not supported by Toy: only torch.nn.Linear is"):
        tuner._create_and_replace(config, "a", torch.nn.Embedding(3, 2), "e", parent, "e")

    other_method = _Shift(torch.nn.Linear(2, 2))  # another method's layer, as in a mixed-method model
    holder = torch.nn.Sequential(other_method)
    tuner._create_and_replace(config, "a", other_method, "0", holder, "0")
    assert isinstance(holder[0], _Recorder) and holder[0].base_layer is other_method  # nested, newest outermost
    refusing, config = _layer_class_tuner(nesting_refused=True)
    holder = torch.nn.Sequential(_Shift(torch.nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="computes with the base weight itself, so it can't wrap another method's layer"):
        refusing._create_and_replace(config, "a", holder[0], "0", holder, "0")
    assert isinstance(holder[0], _Shift)
