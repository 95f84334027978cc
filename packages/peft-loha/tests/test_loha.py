"""LoHa's own behaviour: config, shapes, math (checked against independent computations), init,
patterns, two active adapters and refusals. The conformance kit (test_conformance.py) checks the
rest: merging, several adapters, disabling, mixed batches, dtypes, save/load, bad configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import peft_core
from peft_core import get_peft_model
from peft_core.testing.hf import config_differences, hf_peft_or_skip
from peft_core.testing.registration import assert_registered
from peft_loha import LoHaConfig, LoHaLayer, LoHaModel


def _delta(layer, name="default"):
    """ΔW from the factors, computed here without the package's helpers."""
    a1, b1 = layer.hada_w1_a[name], layer.hada_w1_b[name]
    a2, b2 = layer.hada_w2_a[name], layer.hada_w2_b[name]
    scale = layer.alpha[name] / layer.r[name]
    if name in layer.hada_t1:
        def tucker(t, wa, wb):  # [p, r, k, l] = sum_ij t[i, j, k, l] wa[i, p] wb[j, r]
            return (wa.T @ t.permute(2, 3, 0, 1) @ wb).permute(2, 3, 0, 1)

        full = tucker(layer.hada_t1[name], a1, b1) * tucker(layer.hada_t2[name], a2, b2)
    else:
        full = torch.einsum("or,ri->oi", a1, b1) * torch.einsum("or,ri->oi", a2, b2)
    return (full * scale).reshape(layer.get_base_layer().weight.shape)


def _loha(model, **kwargs):
    kwargs.setdefault("init_weights", False)
    return get_peft_model(model, LoHaConfig(**kwargs)).eval()


# -- config and registration --------------------------------------------------------------------
def test_config_defaults_and_json():
    c = LoHaConfig(target_modules=["q_proj"])
    assert c.peft_type == "LOHA"
    assert (c.r, c.alpha, c.rank_dropout, c.module_dropout, c.use_effective_conv2d, c.init_weights) == (
        8, 8, 0.0, 0.0, False, True
    )
    assert (c.rank_pattern, c.alpha_pattern) == ({}, {})
    data = c.to_dict()
    assert data["target_modules"] == ["q_proj"] and data["peft_type"] == "LOHA"
    again = peft_core.PeftConfig.from_peft_type(**data)
    assert isinstance(again, LoHaConfig) and again.to_dict() == data


def test_config_field_names_and_defaults_equal_hf():
    assert not config_differences(LoHaConfig, hf_peft_or_skip().LoHaConfig)


def test_registered_with_hf_prefix():
    import peft_loha  # noqa: F401

    assert_registered("LOHA", "loha", "hada_", LoHaModel, LoHaConfig, llama_targets=("q_proj", "v_proj"))


# -- shapes -------------------------------------------------------------------------------------
def test_llama_shapes_and_default_targets(make_llama):
    model = _loha(make_llama(), r=2)  # target_modules=None: Llama's default q_proj, v_proj
    assert model.peft_config["default"].target_modules == {"q_proj", "v_proj"}
    state = peft_core.get_peft_model_state_dict(model)
    prefix = "base_model.model.model.layers.0.self_attn."
    assert {k: tuple(v.shape) for k, v in state.items() if k.startswith(prefix)} == {
        prefix + "q_proj.hada_w1_a": (32, 2),
        prefix + "q_proj.hada_w1_b": (2, 32),
        prefix + "q_proj.hada_w2_a": (32, 2),
        prefix + "q_proj.hada_w2_b": (2, 32),
        prefix + "v_proj.hada_w1_a": (16, 2),
        prefix + "v_proj.hada_w1_b": (2, 32),
        prefix + "v_proj.hada_w2_a": (16, 2),
        prefix + "v_proj.hada_w2_b": (2, 32),
    }
    assert len(state) == 16


def test_conv_shapes(make_convnet, conv_targets):
    plain = _loha(make_convnet(), r=2, target_modules=conv_targets).base_model.model
    assert plain.conv2.hada_w1_b["default"].shape == (2, 2 * 9)  # in/groups * kh * kw
    assert plain.conv1.hada_w1_b["default"].shape == (2, 8 * 3)
    assert not plain.conv2.hada_t1
    eff = _loha(make_convnet(), r=2, target_modules=conv_targets, use_effective_conv2d=True).base_model.model
    assert eff.conv2.hada_t1["default"].shape == (2, 2, 3, 3)
    assert eff.conv2.hada_w1_a["default"].shape == (2, 6) and eff.conv2.hada_w2_b["default"].shape == (2, 2)
    assert eff.conv1.hada_t2["default"].shape == (2, 2, 3, 1)  # Conv1d kernels get a trailing 1
    assert not eff.point.hada_t1 and eff.point.hada_w1_b["default"].shape == (2, 6)  # 1x1: never effective
    assert not eff.lin.hada_t1


# -- math ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("effective", [False, True])
def test_forward_equals_base_with_independent_delta(make_convnet, conv_targets, images, effective):
    pristine = make_convnet()
    model = _loha(make_convnet(), r=3, alpha=5, target_modules=conv_targets, use_effective_conv2d=effective)
    inner = model.base_model.model
    with torch.no_grad():
        for name in conv_targets:
            getattr(pristine, name).weight += _delta(getattr(inner, name))
        assert torch.allclose(model(images), pristine(images), atol=1e-5)
        conv = inner.conv2  # the additive form: base(x) + conv(x, ΔW) with the base's settings
        expected = conv.get_base_layer()(images) + F.conv2d(images, _delta(conv), padding=1, groups=2)
        assert torch.allclose(conv(images), expected, atol=1e-6)


def test_linear_forward_on_llama(make_llama, input_ids):
    model = _loha(make_llama(), r=2, alpha=6, target_modules=["q_proj"])
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        expected = layer.get_base_layer()(x) + x @ _delta(layer).T
        assert torch.allclose(layer(x), expected, atol=1e-6)


def test_default_init_is_a_no_op_and_trains(make_convnet, conv_targets, images):
    pristine = make_convnet()
    model = get_peft_model(make_convnet(), LoHaConfig(target_modules=conv_targets, r=2))
    layer = model.base_model.model.lin
    assert torch.count_nonzero(layer.hada_w2_b["default"]) == 0
    assert all(torch.count_nonzero(getattr(layer, n)["default"]) > 0 for n in ("hada_w1_a", "hada_w1_b", "hada_w2_a"))
    with torch.no_grad():
        assert torch.equal(model(images), pristine(images))
    model.train()
    model(images).pow(2).sum().backward()
    assert layer.hada_w2_b["default"].grad.abs().sum() > 0  # the zero factor gets a gradient
    assert not any(p.requires_grad for n, p in model.named_parameters() if "hada_" not in n)


def test_patterns_give_per_layer_rank_alpha_and_scaling(make_llama):
    model = _loha(
        make_llama(),
        r=4,
        alpha=8,
        target_modules=["q_proj", "v_proj"],
        rank_pattern={"layers.0.self_attn.q_proj": 2, r"model.layers.1\..*": 6},
        alpha_pattern={"v_proj": 32},
    )
    layers = model.base_model.model.model.layers
    got = [getattr(layers[i].self_attn, p).scaling["default"] for i in (0, 1) for p in ("q_proj", "v_proj")]
    assert got == pytest.approx([4.0, 8.0, 8 / 6, 32 / 6])
    assert layers[0].self_attn.q_proj.hada_w1_a["default"].shape == (32, 2)


def test_layers_to_transform_and_exclude_modules(make_llama):
    model = _loha(
        make_llama(),
        target_modules=["q_proj", "v_proj", "o_proj"],
        layers_to_transform=[1],
        layers_pattern="layers",
        exclude_modules=["o_proj"],
    )
    adapted = sorted(n for n, m in model.named_modules() if isinstance(m, LoHaLayer))
    assert [n.removeprefix("base_model.model.model.") for n in adapted] == [
        "layers.1.self_attn.q_proj",
        "layers.1.self_attn.v_proj",
    ]


def test_safe_merge_refuses_non_finite_weights(make_convnet, conv_targets):
    model = _loha(make_convnet(), target_modules=["lin"])
    layer = model.base_model.model.lin
    with torch.no_grad():
        layer.hada_w1_a["default"][0, 0] = float("nan")
    before = layer.get_base_layer().weight.clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(layer.get_base_layer().weight, before) and not layer.merged


def test_two_active_adapters_add_their_deltas(make_convnet, conv_targets, images):
    pristine = make_convnet()
    model = _loha(make_convnet(), target_modules=conv_targets)
    model.add_adapter("other", LoHaConfig(target_modules=["lin"], r=3, init_weights=False))
    model.base_model.set_adapter(["default", "other"])
    inner = model.base_model.model
    with torch.no_grad():
        for name in conv_targets:
            getattr(pristine, name).weight += _delta(getattr(inner, name))
        pristine.lin.weight += _delta(inner.lin, "other")
        assert torch.allclose(model(images), pristine(images), atol=1e-5)


def test_gpt2_conv1d_is_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=16))
    with pytest.raises(TypeError, match="Conv1D"):
        get_peft_model(model, LoHaConfig(target_modules=["c_attn"]))
