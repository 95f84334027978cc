"""Point 4: tuner machinery (matching, adapters, trainable flags, merge/unload, modules_to_save)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peft_core import ModulesToSaveWrapper, get_peft_model
from peft_core.tuners.matching import compact_target_names, layer_index, matches_target, pattern_value


def _targeted(model) -> list[str]:
    return sorted(n for n, m in model.named_modules() if type(m).__name__ == "ToyLinear")


def test_list_targets_match_exact_name_or_dotted_suffix(toy, tiny_llama):
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["self_attn.q_proj", "model.layers.1.mlp.up_proj"]))
    assert _targeted(model) == [
        "base_model.model.model.layers.0.self_attn.q_proj",
        "base_model.model.model.layers.1.mlp.up_proj",
        "base_model.model.model.layers.1.self_attn.q_proj",
    ]


def test_partial_names_match_nothing(toy, tiny_llama):
    with pytest.raises(ValueError) as err:
        get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["proj"]))
    msg = str(err.value)
    assert "not found in the base model" in msg and "'q_proj'" in msg  # lists names that exist


def test_string_target_is_a_full_regex_match(toy, tiny_llama):
    with pytest.raises(ValueError):
        get_peft_model(copy.deepcopy(tiny_llama), toy.ToyConfig(target_modules="q_proj"))
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=r".*layers\.1\.self_attn\.(q|k)_proj"))
    assert [n.removeprefix("base_model.model.model.") for n in _targeted(model)] == [
        "layers.1.self_attn.k_proj",
        "layers.1.self_attn.q_proj",
    ]


def test_all_linear_skips_the_output_head(toy, tiny_llama):
    config = toy.ToyConfig(target_modules="all-linear")
    model = get_peft_model(tiny_llama, config)
    names = _targeted(model)
    assert len(names) == 14 and not any("lm_head" in n for n in names)
    assert config.target_modules == {n.removeprefix("base_model.model.") for n in names}  # saved expanded


def test_all_linear_on_custom_model_keeps_every_linear(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules="ALL-LINEAR"))
    assert len(_targeted(model)) == 4


def test_exclude_modules(toy, tiny_llama):
    model = get_peft_model(
        copy.deepcopy(tiny_llama), toy.ToyConfig(target_modules=["q_proj", "v_proj"], exclude_modules=["layers.0.self_attn.v_proj"])
    )
    assert len(_targeted(model)) == 3
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], exclude_modules=r".*layers\.0\..*"))
    assert _targeted(model) == ["base_model.model.model.layers.1.self_attn.q_proj"]


def test_everything_excluded_is_reported(toy, tiny_llama):
    with pytest.raises(ValueError, match="excluded by exclude_modules"):
        get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], exclude_modules=["q_proj"]))


def test_layers_to_transform_and_pattern(toy, tiny_llama):
    model = get_peft_model(
        copy.deepcopy(tiny_llama), toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=[1], layers_pattern="layers")
    )
    assert _targeted(model) == ["base_model.model.model.layers.1.self_attn.q_proj"]
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=0))
    assert _targeted(model) == ["base_model.model.model.layers.0.self_attn.q_proj"]


def test_layer_index_takes_the_first_number():
    assert layer_index("model.layers.3.mlp.experts.7.w1", None) == 3
    assert layer_index("model.h.3.mlp.experts.7.w1", ["layers", "h"]) == 3
    assert layer_index("lin0", None) is None


def test_exact_name_ignores_layers_to_transform(toy):
    config = toy.ToyConfig(target_modules=["model.layers.0.q"], layers_to_transform=[5])
    assert matches_target(config, "model.layers.0.q")


def test_pattern_lookup_first_match_in_insertion_order():
    patterns = {"layers.0.self_attn.q_proj": 2, r"model.layers.1\..*": 6}
    assert pattern_value(patterns, "model.layers.0.self_attn.q_proj", 4) == 2
    assert pattern_value(patterns, "model.layers.1.self_attn.v_proj", 4) == 6
    assert pattern_value(patterns, "model.layers.0.self_attn.v_proj", 4) == 4
    assert pattern_value({"q_proj": 1}, "model.xq_proj", 4) == 4  # dot boundary


def test_rank_pattern_reaches_the_layer(toy, tiny_llama):
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], r=4, rank_pattern={r"layers\.1\.self_attn\.q_proj": 1}))
    layers = dict(model.named_modules())
    assert layers["base_model.model.model.layers.0.self_attn.q_proj"].toy_r["default"] == 4
    assert layers["base_model.model.model.layers.1.self_attn.q_proj"].toy_r["default"] == 1


def test_default_targets_come_from_the_method_registration(toy, tiny_llama):
    config = toy.ToyConfig()
    model = get_peft_model(tiny_llama, config)
    assert config.target_modules == {"q_proj", "v_proj"}
    assert len(_targeted(model)) == 4


def test_regex_default_targets(toy, tiny_llama):
    from peft_core.registry import _REGISTRY

    method = _REGISTRY["toy"]
    patched = dict(method.default_target_modules, llama=r".*layers\.0\.self_attn\.k_proj")
    object.__setattr__(method, "default_target_modules", patched)
    try:
        config = toy.ToyConfig()
        model = get_peft_model(tiny_llama, config)
    finally:
        object.__setattr__(method, "default_target_modules", {"llama": ("q_proj", "v_proj")})
    assert config.target_modules == r".*layers\.0\.self_attn\.k_proj"
    assert _targeted(model) == ["base_model.model.model.layers.0.self_attn.k_proj"]


def test_no_default_targets_for_unknown_model_type(toy, mlp):
    with pytest.raises(ValueError, match="no default targets for model_type None"):
        get_peft_model(mlp, toy.ToyConfig())


def test_large_target_lists_are_compacted():
    names = [f"model.layers.{i}.{p}" for i in range(4) for p in ("q", "k", "v", "o", "up")] + ["model.norm", "lm_head"]
    targets = {n for n in names if not n.endswith(("norm", "head"))}
    assert compact_target_names(targets, names) == {"q", "k", "v", "o", "up"}


def test_compaction_applies_at_twenty_targets(toy):
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(21)], nn.LayerNorm(4))
    config = toy.ToyConfig(target_modules=[str(i) for i in range(21)])
    get_peft_model(model, config)
    assert config.target_modules == {str(i) for i in range(21)}  # nothing shorter separates them


def test_only_adapter_parameters_are_trainable(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0", "lin1"]))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        f"base_model.model.{m}.{k}" for m in ("lin0", "lin1") for k in ("toy_A.default.weight", "toy_B.default.weight", "toy_scale.default")
    }
    t, total = model.get_nb_trainable_parameters()
    assert t == sum(model.state_dict()[n].numel() for n in trainable) and total > t


def test_print_trainable_parameters(toy, mlp, capsys):
    get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"])).print_trainable_parameters()
    assert "trainable params: 64 || all params: 643 ||" in capsys.readouterr().out


def test_non_linear_target_is_refused_by_the_method(toy, mlp):
    with pytest.raises(ValueError, match="not supported by toy"):
        get_peft_model(mlp, toy.ToyConfig(target_modules=["relu"]))


def test_several_adapters(toy, mlp):
    x = torch.randn(5, 8)
    base_out = mlp(x)
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    out_default = model(x)
    model.add_adapter("other", toy.ToyConfig(target_modules=["lin1"], init_weights=False))
    assert model.active_adapter == "default"
    assert torch.equal(model(x), out_default)  # a new adapter is not active
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".other" in n)
    model.set_adapter("other")
    out_other = model(x)
    assert not torch.allclose(out_other, out_default)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".other" in n)
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".default" in n)
    model.set_adapter(["default", "other"])
    assert model.active_adapters == ["default", "other"]
    both = model(x)
    assert not torch.allclose(both, out_other)
    with model.disable_adapter():
        assert torch.allclose(model(x), base_out)
    assert torch.equal(model(x), both)
    model.delete_adapter("default")
    assert list(model.peft_config) == ["other"] and model.active_adapters == ["other"]
    assert not any("toy_A.default" in n for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match="does not exist"):
        model.set_adapter("default")
    with pytest.raises(ValueError, match="already exists"):
        model.add_adapter("other", toy.ToyConfig(target_modules=["lin0"]))


def test_failed_add_adapter_leaves_the_model_unchanged(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    before = set(model.state_dict())
    with pytest.raises(ValueError):
        model.add_adapter("broken", toy.ToyConfig(target_modules=["lin1", "relu"]))
    assert set(model.state_dict()) == before and list(model.peft_config) == ["default"]


@pytest.mark.parametrize("name", ["", "a.b", "../x", "a/b", "__base__", "training", "with space"])
def test_bad_adapter_names_are_rejected_before_anything_changes(toy, mlp, name):
    with pytest.raises(ValueError):
        get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]), adapter_name=name)
    assert not any(type(m).__name__ == "ToyLinear" for m in mlp.modules())


def test_modules_to_save_switch_with_the_active_adapter(toy, mlp):
    x = torch.randn(3, 8)
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], modules_to_save=["head"]))
    wrapper = model.base_model.model.head
    assert isinstance(wrapper, ModulesToSaveWrapper)
    assert wrapper.modules_to_save["default"].weight.requires_grad and not wrapper.original_module.weight.requires_grad
    with torch.no_grad():
        wrapper.modules_to_save["default"].weight.add_(1.0)
    model.add_adapter("second", toy.ToyConfig(target_modules=["lin0"], modules_to_save=["head"]))
    out_default = model(x)
    model.set_adapter("second")
    out_second = model(x)
    assert not torch.allclose(out_default, out_second)
    with model.disable_adapter():
        assert torch.allclose(model(x), out_second)  # the copy for 'second' is still untouched


def test_modules_to_save_uses_plain_endswith(toy, tiny_llama):
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], modules_to_save=["head"]))
    assert isinstance(model.base_model.model.lm_head, ModulesToSaveWrapper)  # HF's quirk, reproduced


def test_merge_unmerge_and_merge_and_unload(toy, mlp):
    x = torch.randn(6, 8)
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0", "lin1"], init_weights=False))
    expected = model(x)
    w0 = model.base_model.model.lin0.base_layer.weight.clone()
    model.merge_adapter()
    assert model.base_model.model.lin0.merged
    assert torch.allclose(model(x), expected, atol=1e-6)
    model.unmerge_adapter()
    assert torch.allclose(model.base_model.model.lin0.base_layer.weight, w0, atol=1e-6)
    merged = model.merge_and_unload(progressbar=True)
    assert isinstance(merged.lin0, nn.Linear) and type(merged.lin0) is nn.Linear
    assert torch.allclose(merged(x), expected, atol=1e-6)
    assert "peft_config" not in merged.__dict__


def test_unload_returns_the_untouched_base(toy, mlp):
    x = torch.randn(2, 8)
    expected = mlp(x)
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False, modules_to_save=["head"]))
    base = model.unload()
    assert all(type(m).__name__ != "ToyLinear" for m in base.modules())
    assert torch.allclose(base(x), expected)


def test_safe_merge_refuses_non_finite_weights(toy, mlp):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.toy_B["default"].weight[0, 0] = float("nan")
    before = layer.base_layer.weight.clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.base_layer.weight, before) and not layer.merged


def test_disable_adapter_after_merge_gives_base_output(toy, mlp):
    x = torch.randn(2, 8)
    base_out = mlp(x)
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    model.merge_adapter()
    with model.disable_adapter():
        assert torch.allclose(model(x), base_out, atol=1e-6)


def test_adapter_weights_follow_base_device_and_autocast_dtype(toy):
    model = nn.Sequential(nn.Linear(4, 4)).to(torch.bfloat16)
    peft_model = get_peft_model(model, toy.ToyConfig(target_modules=["0"]))
    assert peft_model.base_model.model[0].toy_A["default"].weight.dtype == torch.float32
    model = nn.Sequential(nn.Linear(4, 4)).to(torch.bfloat16)
    peft_model = get_peft_model(model, toy.ToyConfig(target_modules=["0"]), autocast_adapter_dtype=False)
    assert peft_model.base_model.model[0].toy_A["default"].weight.dtype == torch.bfloat16


@pytest.mark.parametrize("safe_merge", [False, True])
def test_default_merge_of_an_fp32_delta_into_a_bf16_base_rounds_once(toy, safe_merge):
    """Hugging Face PEFT adds an fp32 delta to a bf16 weight in place (one rounding); casting the
    delta to bf16 first would round twice and change merged weights."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16)).to(torch.bfloat16)
    peft_model = get_peft_model(model, toy.ToyConfig(target_modules=["0"], init_weights=False))
    layer = peft_model.base_model.model[0]
    assert layer.toy_A["default"].weight.dtype == torch.float32  # autocast keeps the adapter in fp32
    before = layer.get_base_layer().weight.detach().clone()
    delta = layer.get_delta_weight("default").detach()
    expected = (before.float() + delta).to(torch.bfloat16)
    assert not torch.equal(expected, before + delta.to(torch.bfloat16))  # the two roundings differ here
    peft_model.merge_adapter(safe_merge=safe_merge)
    assert torch.equal(layer.get_base_layer().weight, expected)


def test_shared_query_value_table_registers_as_is(toy):
    from peft_core.default_targets import QUERY_VALUE_TARGETS
    from peft_core.registry import register_peft_method, unregister_peft_method

    class QVModel(toy.ToyModel):
        prefix = "qv_"

    from dataclasses import dataclass

    @dataclass
    class QVConfig(toy.ToyConfig):
        peft_type: str = "QV"

    method = register_peft_method(name="qv", config_cls=QVConfig, model_cls=QVModel, default_target_modules=QUERY_VALUE_TARGETS,
                                  plugin_api=">=1,<2")
    try:
        assert method.default_target_modules["llama"] == ("q_proj", "v_proj")
        assert method.default_target_modules["gemma4"] == r".*language_model\..*\.(q_proj|v_proj)"
    finally:
        unregister_peft_method("qv")
