"""Small core helpers methods share: per-group mixed batches and the load-time remap hook."""

from __future__ import annotations

import pytest
import torch

from peft_core import AdapterLoadError, ConfigError, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft_core.errors import unsupported_target
from peft_core.tuners.mixed_batch import BatchPlan, add_adapter_deltas, add_per_group, batch_plan, run_per_group


def test_run_per_group_routes_rows():
    plan = BatchPlan.from_names(["a", "__base__", "a", "b", "zzz"])
    x = torch.arange(5.0).unsqueeze(1)
    offsets = {"a": 100.0, "b": 200.0}

    def run(rows, names):
        return rows + (offsets[names[0]] if names else 0.0)

    out = run_per_group(plan, x, run, held={"a", "b"})
    assert out.squeeze(1).tolist() == [100.0, 1.0, 102.0, 203.0, 4.0]


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
