"""LoRA layers: forward math against an independent computation, per layer type and option."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from _lora_test_models import (
    conv_net,
    emb_mlp,
    images,
    input_ids,
    logits,
    randomize_lora,
    tiny_gpt2,
    tiny_llama,
)
from peft_core import PeftModel, get_peft_model
from peft_core.testing.models import assert_dropout_only_in_training
from peft_lora import Conv1d, Conv2d, Conv3d, Embedding, Linear, LoraConfig, LoraLayer
from torch import nn


def _lora_layers(model) -> dict[str, LoraLayer]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def test_linear_forward_math():
    base = emb_mlp()
    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=3, lora_alpha=6, target_modules=["lin0"], init_lora_weights=False)
    )
    layer = model.base_model.model.lin0
    assert isinstance(layer, Linear) and layer.scaling["default"] == 2.0
    x = torch.randn(4, 5, 16)
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    expected = F.linear(x, base.lin0.weight, base.lin0.bias) + 2.0 * (x @ a.T @ b.T)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
    # the adapter layer keeps the base layer's interface
    assert (layer.in_features, layer.out_features) == (16, 32) and layer.weight is base_weight(layer)


def base_weight(layer):
    return layer.get_base_layer().weight


def test_default_init_is_a_no_op_and_only_lora_is_trainable():
    base = tiny_llama()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert torch.equal(logits(model, input_ids()), logits(base, input_ids()))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A.default." in n or ".lora_B.default." in n for n in trainable)
    assert len(trainable) == 8
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert (
        torch.count_nonzero(layer.lora_A["default"].weight) > 0
        and torch.count_nonzero(layer.lora_B["default"].weight) == 0
    )


def test_rslora_and_patterns_give_per_layer_scaling():
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj"],
        rank_pattern={"layers.0.self_attn.q_proj": 2, r"model.layers.1\..*": 6},
        alpha_pattern={"v_proj": 32},
    )
    model = get_peft_model(tiny_llama(), config)
    layers = model.base_model.model.model.layers
    got = {
        (i, n): (getattr(layers[i].self_attn, n).r["default"], getattr(layers[i].self_attn, n).scaling["default"])
        for i in (0, 1)
        for n in ("q_proj", "v_proj")
    }
    assert got == {
        (0, "q_proj"): (2, 4.0),
        (0, "v_proj"): (4, 8.0),
        (1, "q_proj"): (6, 8 / 6),
        (1, "v_proj"): (6, 32 / 6),
    }
    assert layers[1].self_attn.q_proj.lora_A["default"].weight.shape == (6, 32)

    rs = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj"]))
    assert rs.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"] == 8 / math.sqrt(4)


def test_unused_pattern_warns():
    with pytest.warns(UserWarning, match="matched no targeted module"):
        get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], rank_pattern={"nothing_like_this": 4}))


def test_gpt2_conv1d_fan_in_fan_out():
    base = tiny_gpt2()
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, target_modules=["c_attn"], init_lora_weights=False))
    assert model.peft_config["default"].fan_in_fan_out is True
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    assert isinstance(layer, Linear) and layer.fan_in_fan_out and (layer.in_features, layer.out_features) == (32, 96)
    conv1d = base.transformer.h[0].attn.c_attn
    x = torch.randn(2, 3, 32)
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    expected = x @ conv1d.weight + conv1d.bias + layer.scaling["default"] * (x @ a.T @ b.T)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
        assert layer.get_delta_weight("default").shape == conv1d.weight.shape  # (in, out) storage


def test_linear_with_fan_in_fan_out_true_is_flipped_back():
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to False"):
        model = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], fan_in_fan_out=True))
    assert model.peft_config["default"].fan_in_fan_out is False


def test_embedding_forward_math():
    base = emb_mlp()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=3, lora_alpha=3, target_modules=["emb"]))
    layer = model.base_model.model.emb
    assert isinstance(layer, Embedding)
    a, b = layer.lora_embedding_A["default"], layer.lora_embedding_B["default"]
    assert a.shape == (3, 128) and b.shape == (16, 3)
    assert torch.count_nonzero(a) == 0  # HF's embedding init: A = 0, B ~ N(0, 1)
    randomize_lora(model)
    ids = input_ids()
    expected = base.emb.weight[ids] + (a.T[ids] @ b.T) * 1.0
    with torch.no_grad():
        torch.testing.assert_close(layer(ids), expected)


def test_embedding_with_embed_scale_scales_the_lora_term():
    class ScaledEmbedding(nn.Embedding):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.embed_scale = 3.0

        def forward(self, ids):
            return super().forward(ids) * self.embed_scale

    base = nn.Sequential(ScaledEmbedding(10, 4))
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["0"], init_lora_weights=False))
    layer = model.base_model.model[0]
    ids = torch.tensor([[1, 2, 3]])
    a, b = layer.lora_embedding_A["default"], layer.lora_embedding_B["default"]
    expected = base(ids) + 3.0 * layer.scaling["default"] * (a.T[ids] @ b.T)
    with torch.no_grad():
        torch.testing.assert_close(layer(ids), expected)


@pytest.mark.parametrize(
    "name, cls", [("conv2d", Conv2d), ("pointwise", Conv2d), ("conv1d", Conv1d), ("conv3d", Conv3d)]
)
def test_conv_forward_math(name, cls):
    base = conv_net()
    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4, target_modules=[name], init_lora_weights=False)
    )
    layer = getattr(model.base_model.model, name)
    assert isinstance(layer, cls)
    conv = getattr(base, name)
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    assert a.shape == (2, conv.in_channels, *conv.kernel_size) and b.shape[:2] == (conv.out_channels, 2)
    # independent: a conv with the combined kernel W + s·Σ_k B[:, k] A[k]
    delta = 2.0 * torch.einsum("ok,ki...->oi...", b.flatten(2).squeeze(-1), a)
    fn = {4: F.conv2d, 3: F.conv1d, 5: F.conv3d}[conv.weight.dim()]
    x = torch.randn(2, conv.in_channels, *([6] * (conv.weight.dim() - 2)))
    expected = fn(x, conv.weight + delta, conv.bias, conv.stride, conv.padding)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer.get_delta_weight("default"), delta, atol=1e-6, rtol=1e-5)


def test_conv_groups_and_unsupported_inits():
    base = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="divisible by groups"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_peft_model(copy.deepcopy(base), LoraConfig(r=3, target_modules=["0"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["0"], init_lora_weights=False))
    with pytest.raises(NotImplementedError, match="groups > 1"):
        model.merge_adapter()
    with pytest.raises(ValueError, match="not supported for Conv2d"):
        get_peft_model(conv_net(), LoraConfig(r=2, target_modules=["conv2d"], init_lora_weights="pissa"))


def test_lora_bias_forward_and_embedding_refusal():
    base = emb_mlp()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["lin0"], lora_bias=True))
    layer = model.base_model.model.lin0
    assert layer.lora_B["default"].bias is not None and torch.count_nonzero(layer.lora_B["default"].bias) == 0
    randomize_lora(model)
    x = torch.randn(3, 16)
    a, b, bb = layer.lora_A["default"].weight, layer.lora_B["default"].weight, layer.lora_B["default"].bias
    expected = base.lin0(x) + (x @ a.T @ b.T + bb) * layer.scaling["default"]
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
    with pytest.raises(ValueError, match="lora_bias=True is not supported for Embedding"):
        get_peft_model(emb_mlp(), LoraConfig(r=2, target_modules=["emb"], lora_bias=True))
    with pytest.warns(UserWarning, match="has no bias"):
        get_peft_model(emb_mlp(), LoraConfig(r=2, target_modules=["lin1"], lora_bias=True))


def test_dropout_only_in_training():
    model = get_peft_model(
        emb_mlp(), LoraConfig(r=4, target_modules=["lin0"], lora_dropout=0.5, init_lora_weights=False)
    )
    assert_dropout_only_in_training(model, input_ids(), draws=2)


def test_unsupported_target_is_a_clear_error():
    with pytest.raises(ValueError, match="not supported by LoRA.*Supported layer types"):
        get_peft_model(tiny_llama(), LoraConfig(target_modules=["input_layernorm"]))


def test_targets_exclusions_and_layers():
    model = get_peft_model(
        tiny_llama(),
        LoraConfig(
            r=2, target_modules=["q_proj", "v_proj", "down_proj"], exclude_modules=["v_proj"], layers_to_transform=1
        ),
    )
    assert sorted(_lora_layers(model.base_model.model)) == [
        "model.layers.1.mlp.down_proj",
        "model.layers.1.self_attn.q_proj",
    ]
    regex = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=r".*\.0\.self_attn\.(k|o)_proj"))
    assert sorted(_lora_layers(regex.base_model.model)) == [
        "model.layers.0.self_attn.k_proj",
        "model.layers.0.self_attn.o_proj",
    ]
    default = get_peft_model(tiny_llama(), LoraConfig(r=2))
    assert default.peft_config["default"].target_modules == {"q_proj", "v_proj"}
    assert len(_lora_layers(default.base_model.model)) == 4
    all_linear = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules="all-linear"))
    assert (
        "lm_head" not in _lora_layers(all_linear.base_model.model)
        and len(_lora_layers(all_linear.base_model.model)) == 14
    )


def test_regex_default_targets_for_gemma4():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    class Fake(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = {"model_type": "gemma4"}
            self.language_model = nn.ModuleDict({"layers": nn.ModuleList([Attn()])})
            self.vision = nn.ModuleDict({"layers": nn.ModuleList([Attn()])})

    model = get_peft_model(Fake(), LoraConfig(r=2))
    assert sorted(_lora_layers(model.base_model.model)) == [
        "language_model.layers.0.q_proj",
        "language_model.layers.0.v_proj",
    ]


@pytest.mark.parametrize("use_dora", [False, True])
def test_low_cpu_mem_usage_round_trip(tmp_path, use_dora):
    base = tiny_llama()
    config = dict(r=4, target_modules=["q_proj", "v_proj", "embed_tokens"], use_dora=use_dora)
    meta = get_peft_model(copy.deepcopy(base), LoraConfig(**config), low_cpu_mem_usage=True)
    assert meta.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight.is_meta
    model = get_peft_model(copy.deepcopy(base), LoraConfig(**config))
    randomize_lora(model)
    model.save_pretrained(tmp_path)
    expected = logits(model, input_ids())
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=True)
    assert not any(p.is_meta for p in loaded.parameters())
    assert torch.equal(logits(loaded, input_ids()), expected)
    # adding a second adapter with low_cpu_mem_usage, then loading it, works the same way
    loaded.load_adapter(tmp_path, "again", low_cpu_mem_usage=True)
    loaded.set_adapter("again")
    assert torch.equal(logits(loaded, input_ids()), expected)


def test_bf16_base_keeps_fp32_adapters_and_casts_inputs():
    base = emb_mlp().to(torch.bfloat16)
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["lin0"], init_lora_weights=False))
    layer = model.base_model.model.lin0
    assert layer.lora_A["default"].weight.dtype == torch.float32
    with torch.no_grad():
        out = model(input_ids())
    assert out.dtype == torch.bfloat16


def test_module_conversions_reach_the_adapters():
    """`.to()`, `.double()`, `.half()` go through nn.Module._apply: the layers must not shadow it."""
    base = conv_net()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["conv2d", "head"], use_dora=True))
    model.add_adapter("emb", LoraConfig(r=2, target_modules=["conv1d"]))
    model.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        out = model(images().double())
    assert out.dtype == torch.float64
    model.float()
    assert all(p.dtype == torch.float32 for p in model.parameters())
