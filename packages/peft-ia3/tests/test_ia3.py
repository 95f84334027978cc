"""(IA)³'s own behaviour: config, matching, shapes, math, merge, several adapters, mixed batches."""

from __future__ import annotations

import copy
import tempfile
import warnings

import pytest
import torch
from torch import nn

from peft_core import ConfigError, PeftModel, get_peft_model
from peft_core.testing.hf import config_differences
from peft_ia3 import FEEDFORWARD_MODULES, TARGET_MODULES, IA3Config, IA3Conv, IA3Linear


# -- config -------------------------------------------------------------------------------------
def test_config_fields_and_defaults_match_hf():
    import peft

    assert not config_differences(IA3Config, peft.IA3Config)
    assert IA3Config().peft_type == "IA3"


def test_default_tables_match_hf():
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
    )

    assert TARGET_MODULES == TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING
    assert FEEDFORWARD_MODULES == TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING


def test_feedforward_must_be_subset_of_targets():
    with pytest.raises(ConfigError, match="subset"):
        IA3Config(target_modules=["q_proj"], feedforward_modules=["down_proj"])
    # A regex on either side can't be checked up front (HF doesn't either).
    IA3Config(target_modules=".*proj", feedforward_modules=["down_proj"])


def test_set_fields_become_sets_and_sorted_lists_on_save():
    config = IA3Config(target_modules=["v_proj", "k_proj", "down_proj"], feedforward_modules=["down_proj"])
    assert config.target_modules == {"k_proj", "v_proj", "down_proj"}
    assert config.to_dict()["target_modules"] == ["down_proj", "k_proj", "v_proj"]


def test_default_targets_and_feedforward_on_llama(tiny_llama, saved_weights):
    model = get_peft_model(tiny_llama, IA3Config(task_type="CAUSAL_LM"))
    config = model.peft_config["default"]
    assert config.target_modules == {"k_proj", "v_proj", "down_proj"}
    assert config.feedforward_modules == {"down_proj"}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        weights = saved_weights(tmp)
    prefix = "base_model.model.model.layers"
    expected = {}
    for i in range(2):
        expected[f"{prefix}.{i}.mlp.down_proj.ia3_l"] = ((1, 64), torch.float32)
        expected[f"{prefix}.{i}.self_attn.k_proj.ia3_l"] = ((16, 1), torch.float32)
        expected[f"{prefix}.{i}.self_attn.v_proj.ia3_l"] = ((16, 1), torch.float32)
    assert weights == expected


def test_custom_model_needs_feedforward_modules(mlp):
    with pytest.raises(ValueError, match="feedforward_modules"):
        get_peft_model(mlp, IA3Config(target_modules=["lin0"]))


def test_feedforward_list_matches_name_endings_without_dot_boundary(tiny_llama):
    # "n_proj" is not a module name, but "down_proj" ends with it: HF treats it as feed-forward.
    config = IA3Config(target_modules=r".*\.(o_proj|down_proj)", feedforward_modules=["n_proj"])
    model = get_peft_model(tiny_llama, config)
    layer = model.base_model.model.model.layers[0]
    assert layer.mlp.down_proj.ia3_feedforward["default"] is True
    assert layer.mlp.down_proj.ia3_l["default"].shape == (1, 64)
    assert layer.self_attn.o_proj.ia3_feedforward["default"] is False
    assert layer.self_attn.o_proj.ia3_l["default"].shape == (32, 1)


def test_feedforward_string_is_regex_fullmatch(tiny_llama):
    config = IA3Config(target_modules=["o_proj", "down_proj"], feedforward_modules=r"model\.layers\.0\..*down_proj")
    model = get_peft_model(tiny_llama, config)
    layers = model.base_model.model.model.layers
    assert layers[0].mlp.down_proj.ia3_feedforward["default"] is True
    assert layers[1].mlp.down_proj.ia3_feedforward["default"] is False


def test_exclude_modules(tiny_llama):
    config = IA3Config(target_modules=["k_proj", "v_proj"], feedforward_modules=[], exclude_modules=["layers.1.self_attn.k_proj"])
    model = get_peft_model(tiny_llama, config)
    layers = model.base_model.model.model.layers
    assert isinstance(layers[0].self_attn.k_proj, IA3Linear)
    assert not isinstance(layers[1].self_attn.k_proj, IA3Linear)
    assert isinstance(layers[1].self_attn.v_proj, IA3Linear)


def test_large_target_lists_are_not_compacted(tiny_llama):
    names = [n for n, m in tiny_llama.named_modules() if isinstance(m, nn.Linear) and "lm_head" not in n]
    names += ["does_not_exist_%d" % i for i in range(10)]  # well over HF's compaction threshold
    model = get_peft_model(tiny_llama, IA3Config(target_modules=names, feedforward_modules=[]))
    assert model.peft_config["default"].target_modules == set(names)


def test_init_ia3_weights_true_is_a_noop(mlp):
    x = torch.randn(4, 8)
    expected = mlp(x)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    assert torch.equal(model(x), expected)
    model.add_adapter("random", IA3Config(target_modules=["lin0"], feedforward_modules=[], init_ia3_weights=False))
    assert not torch.equal(model.base_model.model.lin0.ia3_l["random"], torch.ones(16, 1))


# -- math ---------------------------------------------------------------------------------------
def test_linear_output_and_input_scaling_math(mlp, randomize):
    base = copy.deepcopy(mlp)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    randomize(model)
    l0 = model.base_model.model.lin0.ia3_l["default"].detach()  # [16, 1], scales outputs (and bias)
    l1 = model.base_model.model.lin1.ia3_l["default"].detach()  # [1, 16], scales inputs
    assert l0.shape == (16, 1) and l1.shape == (1, 16)
    x = torch.randn(5, 8)
    h = torch.relu((x @ base.lin0.weight.T + base.lin0.bias) * l0.flatten())
    h = torch.relu((h * l1.flatten()) @ base.lin1.weight.T + base.lin1.bias)
    expected = h @ base.lin2.weight.T + base.lin2.bias
    torch.testing.assert_close(model(x), expected, rtol=1e-6, atol=1e-6)


def test_conv_scaling_math(convnet, randomize):
    base = copy.deepcopy(convnet)
    config = IA3Config(target_modules=["conv0", "conv1", "conv2"], feedforward_modules=["conv1"])
    model = get_peft_model(convnet, config)
    randomize(model)
    layers = model.base_model.model
    assert isinstance(layers.conv0, IA3Conv)
    l0 = layers.conv0.ia3_l["default"].detach()
    l1 = layers.conv1.ia3_l["default"].detach()
    l2 = layers.conv2.ia3_l["default"].detach()
    assert l0.shape == (1, 8, 1, 1) and l1.shape == (1, 8, 1, 1) and l2.shape == (1, 6, 1, 1)
    x = torch.randn(2, 3, 5, 5)
    h = torch.relu(base.conv0(x) * l0)
    h = torch.relu(base.conv1(h * l1))
    expected = base.head((base.conv2(h) * l2).flatten(1))
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


def test_conv3d(conv3dnet, randomize):
    base = copy.deepcopy(conv3dnet)
    model = get_peft_model(conv3dnet, IA3Config(target_modules=["conv0", "conv1"], feedforward_modules=["conv1"]))
    randomize(model)
    l0 = model.base_model.model.conv0.ia3_l["default"].detach()
    l1 = model.base_model.model.conv1.ia3_l["default"].detach()
    assert l0.shape == (1, 4, 1, 1, 1) and l1.shape == (1, 4, 1, 1, 1)
    x = torch.randn(2, 2, 3, 3, 3)
    expected = base.conv1(torch.relu(base.conv0(x) * l0) * l1)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    merged = model.merge_and_unload()
    torch.testing.assert_close(merged(x), expected, rtol=1e-5, atol=1e-5)


def test_unsupported_layer_type_is_refused():
    model = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(ValueError, match="not supported"):
        get_peft_model(model, IA3Config(target_modules=["0"], feedforward_modules=[]))


# -- merging ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_name", ["mlp", "convnet"])
def test_merge_unmerge(model_name, request, randomize):
    base = request.getfixturevalue(model_name)
    if model_name == "mlp":
        config = IA3Config(target_modules=["lin0", "lin1", "lin2"], feedforward_modules=["lin1"])
        x = torch.randn(4, 8)
    else:
        config = IA3Config(target_modules=["conv0", "conv1", "conv2"], feedforward_modules=["conv1", "conv2"])
        x = torch.randn(2, 3, 5, 5)
    original = {k: v.clone() for k, v in base.state_dict().items()}
    model = get_peft_model(base, config)
    randomize(model)
    expected = model(x)
    model.merge_adapter()
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    model.unmerge_adapter()
    restored = {k.replace(".base_layer", ""): v for k, v in model.get_base_model().state_dict().items() if "ia3_l" not in k}
    for key, value in original.items():
        torch.testing.assert_close(restored[key], value, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model(x), expected, rtol=1e-6, atol=1e-6)


def test_merged_weights_match_hand_computation(mlp, randomize):
    base = copy.deepcopy(mlp)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    randomize(model)
    l0 = model.base_model.model.lin0.ia3_l["default"].detach().clone()
    l1 = model.base_model.model.lin1.ia3_l["default"].detach().clone()
    merged = model.merge_and_unload()
    assert isinstance(merged.lin0, nn.Linear) and isinstance(merged.lin1, nn.Linear)
    assert torch.equal(merged.lin0.weight, base.lin0.weight * l0)  # rows
    assert torch.equal(merged.lin0.bias, base.lin0.bias * l0.flatten())
    assert torch.equal(merged.lin1.weight, base.lin1.weight * l1)  # columns
    assert torch.equal(merged.lin1.bias, base.lin1.bias)  # feed-forward: bias untouched


def test_unmerge_divides_by_vector_plus_eps(mlp):
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0"], feedforward_modules=[]))
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.ia3_l["default"].fill_(0.0)
    before = layer.get_base_layer().weight.detach().clone()
    model.merge_adapter()
    model.unmerge_adapter()  # 0 / (0 + 1e-8) = 0: like HF, unmerging a zero vector cannot restore the weights
    assert torch.equal(layer.get_base_layer().weight, torch.zeros_like(before))


def test_safe_merge_refuses_non_finite(mlp):
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0"], feedforward_modules=[]))
    layer = model.base_model.model.lin0
    with torch.no_grad():
        layer.ia3_l["default"][0, 0] = float("inf")
    before = layer.get_base_layer().weight.detach().clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.get_base_layer().weight, before)
    assert not layer.merged


def test_disable_adapter(mlp, randomize):
    x = torch.randn(3, 8)
    expected = mlp(x)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    randomize(model)
    adapted = model(x)
    assert not torch.allclose(adapted, expected)
    with model.disable_adapter():
        assert torch.equal(model(x), expected)
    model.merge_adapter()
    with model.disable_adapter():
        torch.testing.assert_close(model(x), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model(x), adapted, rtol=1e-6, atol=1e-6)


# -- GPT-2 Conv1D -------------------------------------------------------------------------------
def test_conv1d_flips_fan_in_fan_out_and_merges(tiny_gpt2, input_ids, randomize):
    config = IA3Config(target_modules=["c_attn", "mlp.c_proj"], feedforward_modules=["mlp.c_proj"])
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        model = get_peft_model(tiny_gpt2, config)
    assert model.peft_config["default"].fan_in_fan_out is True
    block = model.base_model.model.transformer.h[0]
    assert block.attn.c_attn.ia3_l["default"].shape == (96, 1)
    assert block.mlp.c_proj.ia3_l["default"].shape == (1, 128)
    randomize(model)
    expected = model(input_ids).logits
    merged = model.merge_and_unload()
    torch.testing.assert_close(merged(input_ids).logits, expected, rtol=1e-5, atol=1e-5)


def test_linear_flips_fan_in_fan_out_back(mlp):
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to False"):
        model = get_peft_model(mlp, IA3Config(target_modules=["lin0"], feedforward_modules=[], fan_in_fan_out=True))
    assert model.peft_config["default"].fan_in_fan_out is False


# -- several adapters ---------------------------------------------------------------------------
def test_several_adapters_set_delete_and_combine(mlp, randomize):
    x = torch.randn(3, 8)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    model.add_adapter("other", IA3Config(target_modules=["lin1", "lin2"], feedforward_modules=[]))
    randomize(model)
    # lin1 holds one input-scaling and one output-scaling adapter.
    lin1 = model.base_model.model.lin1
    assert lin1.ia3_feedforward == {"default": True, "other": False}
    out_default = model(x)
    model.set_adapter("other")
    out_other = model(x)
    assert not torch.allclose(out_default, out_other)
    assert all(p.requires_grad == (".other" in n) for n, p in model.named_parameters() if "ia3_l" in n)
    # Both active: lin1 scales its input by default's vector and its output by other's.
    model.set_adapter(["default", "other"])
    both = model(x)
    model.merge_adapter(["default", "other"])
    torch.testing.assert_close(model(x), both, rtol=1e-5, atol=1e-6)
    model.unmerge_adapter()
    model.delete_adapter("other")
    model.set_adapter("default")
    torch.testing.assert_close(model(x), out_default, rtol=1e-6, atol=1e-6)


def test_mixed_batch(mlp, randomize):
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    model.add_adapter("other", IA3Config(target_modules=["lin1", "lin2"], feedforward_modules=[]))
    randomize(model)
    model.eval()
    x = torch.randn(5, 8)
    names = ["default", "other", "__base__", "other", "default"]
    got = model(x, adapter_names=names)
    model.set_adapter("default")
    out_default = model(x)
    model.set_adapter("other")
    out_other = model(x)
    with model.disable_adapter():
        out_base = model(x)
    expected = torch.stack([{"default": out_default, "other": out_other, "__base__": out_base}[n][i] for i, n in enumerate(names)])
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_mixed_batch_conv(convnet, randomize):
    config = IA3Config(target_modules=["conv0", "conv1"], feedforward_modules=["conv1"])
    model = get_peft_model(convnet, config)
    model.add_adapter("b", IA3Config(target_modules=["conv1", "conv2"], feedforward_modules=["conv2"]))
    randomize(model)
    model.eval()
    x = torch.randn(3, 3, 5, 5)
    got = model(x, adapter_names=["b", "default", "__base__"])
    model.set_adapter("b")
    torch.testing.assert_close(got[0], model(x)[0], rtol=1e-6, atol=1e-6)
    model.set_adapter("default")
    torch.testing.assert_close(got[1], model(x)[1], rtol=1e-6, atol=1e-6)
    with model.disable_adapter():
        torch.testing.assert_close(got[2], model(x)[2], rtol=1e-6, atol=1e-6)


# -- save / load --------------------------------------------------------------------------------
def test_save_load_roundtrip_with_modules_to_save(mlp, randomize):
    pristine = copy.deepcopy(mlp)
    config = IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"], modules_to_save=["lin2"])
    model = get_peft_model(mlp, config)
    model.add_adapter("other", IA3Config(target_modules=["lin0"], feedforward_modules=["lin0"]))
    randomize(model)
    with torch.no_grad():
        model.base_model.model.lin2.modules_to_save["default"].weight.add_(0.5)
    x = torch.randn(3, 8)
    expected = model(x)
    model.set_adapter("other")
    expected_other = model(x)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        loaded = PeftModel.from_pretrained(copy.deepcopy(pristine), tmp)
        loaded.load_adapter(tmp, "other", subfolder="other")
    assert torch.equal(loaded(x), expected)
    loaded.set_adapter("other")
    assert torch.equal(loaded(x), expected_other)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_is_trainable_load(mlp):
    pristine = copy.deepcopy(mlp)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0"], feedforward_modules=[]))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        loaded = PeftModel.from_pretrained(pristine, tmp, is_trainable=True)
    trainable = {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert trainable == {"base_model.model.lin0.ia3_l.default"}


def test_fp16_base_keeps_fp32_vectors(mlp):
    model = get_peft_model(mlp.half(), IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    assert model.base_model.model.lin0.ia3_l["default"].dtype == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model(torch.randn(2, 8, dtype=torch.float16))
    assert out.dtype == torch.float16


def test_low_cpu_mem_usage_load(mlp, randomize):
    pristine = copy.deepcopy(mlp)
    model = get_peft_model(mlp, IA3Config(target_modules=["lin0", "lin1"], feedforward_modules=["lin1"]))
    randomize(model)
    x = torch.randn(3, 8)
    expected = model(x)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        loaded = PeftModel.from_pretrained(pristine, tmp, low_cpu_mem_usage=True)
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    assert torch.equal(loaded(x), expected)
