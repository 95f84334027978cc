"""LoKr's own behaviour: config, which tensors a layer gets, math (checked against an independent
Kronecker product), the three init modes, rank dropout, two active adapters and refusals. The
conformance kit (test_conformance.py) checks the rest: merging, several adapters, disabling, mixed
batches, dtypes, save/load, bad configs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import peft_core
from peft_core import get_peft_model
from peft_core.testing.hf import config_differences, hf_peft_or_skip
from peft_core.testing.registration import assert_registered
from peft_lokr import LoKrConfig, LoKrModel, factorization


def _kron(a, b):
    """Kronecker product written out: [a0*b0, a1*b1, (kernel...)] from an outer product."""
    if b.dim() == 2:
        return torch.einsum("ab,cd->acbd", a, b).reshape(a.shape[0] * b.shape[0], a.shape[1] * b.shape[1])
    if b.dim() == 4:
        out = torch.einsum("ab,cdkl->acbdkl", a, b)
        return out.reshape(a.shape[0] * b.shape[0], a.shape[1] * b.shape[1], *b.shape[2:])
    raise AssertionError("3-D w2 is checked against torch.kron's own rule in test_conv1d_full_w2")


def _factor(layer, side, name="default"):
    if side == 1:
        if name in layer.lokr_w1:
            return layer.lokr_w1[name]
        return layer.lokr_w1_a[name] @ layer.lokr_w1_b[name]
    if name in layer.lokr_w2:
        return layer.lokr_w2[name]
    if name in layer.lokr_t2:  # [p, r, k, l] = sum_ij t[i, j, k, l] a[i, p] b[j, r]
        t, a, b = layer.lokr_t2[name], layer.lokr_w2_a[name], layer.lokr_w2_b[name]
        return (a.T @ t.permute(2, 3, 0, 1) @ b).permute(2, 3, 0, 1)
    return layer.lokr_w2_a[name] @ layer.lokr_w2_b[name]


def _delta(layer, name="default"):
    scale = layer.alpha[name] / layer.r[name]
    return (_kron(_factor(layer, 1, name), _factor(layer, 2, name)) * scale).reshape(layer.get_base_layer().weight.shape)


def _lokr(model, **kwargs):
    kwargs.setdefault("init_weights", False)
    return get_peft_model(model, LoKrConfig(**kwargs)).eval()


def _tensors(layer):
    return {attr: tuple(getattr(layer, attr)["default"].shape) for attr in layer.adapter_layer_names if "default" in getattr(layer, attr)}


# -- config and registration --------------------------------------------------------------------
def test_config_defaults_and_json():
    c = LoKrConfig(target_modules=["q_proj"], init_weights="lycoris")
    assert c.peft_type == "LOKR"
    assert (c.r, c.alpha, c.decompose_both, c.decompose_factor, c.rank_dropout_scale) == (8, 8, False, -1, False)
    data = c.to_dict()
    assert data["init_weights"] == "lycoris"
    again = peft_core.PeftConfig.from_peft_type(**data)
    assert isinstance(again, LoKrConfig) and again.to_dict() == data


def test_config_field_names_and_defaults_equal_hf():
    assert not config_differences(LoKrConfig, hf_peft_or_skip().LoKrConfig)


def test_registered():
    assert_registered("LOKR", "lokr", "lokr_", LoKrModel, LoKrConfig, llama_targets=("q_proj", "v_proj"))




# -- which tensors exist ------------------------------------------------------------------------
def test_factorization_examples():
    assert factorization(256) == (16, 16) and factorization(128) == (8, 16) and factorization(127) == (1, 127)
    assert factorization(128, 4) == (4, 32) and factorization(128, 64) == (64, 2)  # a dividing factor comes first
    assert factorization(96, 64) == (8, 12) and factorization(96, 5) == (4, 24) and factorization(12, 0) == (1, 12)


@pytest.mark.parametrize(
    "out_f, in_f, kwargs, expected",
    [
        (32, 32, dict(r=2), {"lokr_w1": (4, 4), "lokr_w2_a": (8, 2), "lokr_w2_b": (2, 8)}),
        (32, 32, dict(r=4), {"lokr_w1": (4, 4), "lokr_w2": (8, 8)}),  # r >= max(8, 8) / 2: full w2
        (32, 32, dict(r=1, decompose_both=True),
         {"lokr_w1_a": (4, 1), "lokr_w1_b": (1, 4), "lokr_w2_a": (8, 1), "lokr_w2_b": (1, 8)}),
        (32, 32, dict(r=2, decompose_both=True), {"lokr_w1": (4, 4), "lokr_w2_a": (8, 2), "lokr_w2_b": (2, 8)}),
        (128, 96, dict(r=8, decompose_factor=4), {"lokr_w1": (4, 4), "lokr_w2_a": (32, 8), "lokr_w2_b": (8, 24)}),
        (128, 96, dict(r=8, decompose_factor=64), {"lokr_w1": (64, 8), "lokr_w2": (2, 12)}),
    ],
)
def test_linear_tensor_selection(out_f, in_f, kwargs, expected):
    model = _lokr(nn.Sequential(nn.Linear(in_f, out_f)), target_modules=["0"], **kwargs)
    assert _tensors(model.base_model.model[0]) == expected


def test_llama_shapes_and_default_targets(make_llama):
    model = _lokr(make_llama(), r=2)  # target_modules=None: Llama's q_proj, v_proj
    assert model.peft_config["default"].target_modules == {"q_proj", "v_proj"}
    attn = model.base_model.model.model.layers[0].self_attn
    assert _tensors(attn.q_proj) == {"lokr_w1": (4, 4), "lokr_w2_a": (8, 2), "lokr_w2_b": (2, 8)}
    assert _tensors(attn.v_proj) == {"lokr_w1": (4, 4), "lokr_w2_a": (4, 2), "lokr_w2_b": (2, 8)}  # 16 = 4*4


def test_conv_tensor_selection(kronnet_factory, kron_targets):
    inner = _lokr(kronnet_factory(), r=1, target_modules=kron_targets, use_effective_conv2d=True).base_model.model
    assert _tensors(inner.conv2) == {"lokr_w1": (3, 1), "lokr_w2_a": (1, 4), "lokr_w2_b": (1, 2), "lokr_t2": (1, 1, 3, 3)}
    assert _tensors(inner.point) == {"lokr_w1": (2, 3), "lokr_w2_a": (4, 1), "lokr_w2_b": (1, 4)}  # 1x1: flat
    assert _tensors(inner.conv1)["lokr_t2"] == (1, 1, 3, 1)
    flat = _lokr(kronnet_factory(), r=1, target_modules=kron_targets).base_model.model
    assert _tensors(flat.conv2)["lokr_w2_b"] == (1, 2 * 9) and _tensors(flat.conv1)["lokr_w2_b"] == (1, 4 * 3)
    full = _lokr(kronnet_factory(), r=3, target_modules=kron_targets, use_effective_conv2d=True).base_model.model
    assert _tensors(full.conv2)["lokr_w2"] == (4, 2, 3, 3) and "lokr_t2" not in _tensors(full.conv2)
    assert _tensors(full.conv1)["lokr_w2"] == (6, 4, 3)


# -- math ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(r=1, decompose_both=True), dict(r=1, use_effective_conv2d=True), dict(r=2, alpha=3)])
def test_forward_equals_base_with_independent_delta(kronnet_factory, kron_targets, images, kwargs):
    pristine = kronnet_factory()
    model = _lokr(kronnet_factory(), target_modules=kron_targets, **kwargs)
    inner = model.base_model.model
    with torch.no_grad():
        for name in kron_targets:
            layer = getattr(inner, name)
            w2 = _factor(layer, 2)
            delta = layer.get_delta_weight("default") if w2.dim() == 3 else _delta(layer)
            if w2.dim() != 3:
                assert torch.allclose(layer.get_delta_weight("default"), delta, atol=1e-6), name
            getattr(pristine, name).weight += delta
        assert torch.allclose(model(images), pristine(images), atol=1e-5)


def test_conv1d_full_w2_follows_torch_kron_padding(kronnet_factory, kron_targets):
    # HF 0.21.2 takes kron(w1 [oL, iM], w2 [oK, iN, k]) with torch's rule (w1 -> [1, oL, iM]); keep it
    layer = _lokr(kronnet_factory(), r=3, target_modules=["conv1"]).base_model.model.conv1
    w1, w2 = layer.lokr_w1["default"], layer.lokr_w2["default"]
    written_out = torch.einsum("ab,cdk->cadbk", w1, w2).reshape(w2.shape[0], w1.shape[0] * w2.shape[1], w1.shape[1] * w2.shape[2])
    expected = (written_out * layer.scaling["default"]).reshape(24, 8, 3)
    assert torch.allclose(layer.get_delta_weight("default"), expected, atol=1e-6)


def test_linear_forward_on_llama(make_llama):
    model = _lokr(make_llama(), r=1, alpha=3, decompose_both=True, target_modules=["q_proj"])
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        assert torch.allclose(layer(x), layer.get_base_layer()(x) + x @ _delta(layer).T, atol=1e-6)


def test_conv1d_effective_rank_one_works_here(kronnet_factory, images):
    # HF 0.21.2 raises inside torch.kron for this layout (an odd stride on a size-1 dimension)
    model = _lokr(kronnet_factory(), r=1, target_modules=["conv1"], use_effective_conv2d=True)
    layer = model.base_model.model.conv1
    assert torch.allclose(layer.get_delta_weight("default"), _delta(layer).reshape(24, 8, 3), atol=1e-6)
    with torch.no_grad():
        assert torch.isfinite(model(images)).all()


@pytest.mark.parametrize("decompose_both", [False, True])
def test_init_modes(kronnet_factory, kron_targets, images, decompose_both):
    pristine = kronnet_factory()
    kwargs = dict(r=1, target_modules=kron_targets, decompose_both=decompose_both)
    default = get_peft_model(kronnet_factory(), LoKrConfig(**kwargs)).eval()
    lycoris = get_peft_model(kronnet_factory(), LoKrConfig(init_weights="lycoris", **kwargs)).eval()
    random = _lokr(kronnet_factory(), **kwargs)
    with torch.no_grad():
        assert torch.equal(default(images), pristine(images))
        assert torch.equal(lycoris(images), pristine(images))
        assert not torch.allclose(random(images), pristine(images))
    lin_d, lin_l = default.base_model.model.lin, lycoris.base_model.model.lin
    first = "lokr_w1_a" if decompose_both else "lokr_w1"
    assert torch.count_nonzero(getattr(lin_d, first)["default"]) == 0
    assert torch.count_nonzero(lin_d.lokr_w2_a["default"]) > 0 and torch.count_nonzero(lin_d.lokr_w2_b["default"]) > 0
    assert torch.count_nonzero(lin_l.lokr_w2_b["default"]) == 0 and torch.count_nonzero(getattr(lin_l, first)["default"]) > 0
    full = get_peft_model(kronnet_factory(), LoKrConfig(r=3, init_weights="lycoris", target_modules=["conv2"]))
    assert torch.count_nonzero(full.base_model.model.conv2.lokr_w2["default"]) == 0


def test_rank_dropout_with_and_without_rescaling(kronnet_factory):
    model = _lokr(kronnet_factory(), r=1, target_modules=["lin"], rank_dropout=0.5)
    layer = model.base_model.model.lin
    full = layer.get_delta_weight("default")
    torch.manual_seed(3)
    dropped = layer.get_delta_weight("default", apply_rank_dropout=True)
    torch.manual_seed(3)
    keep = (torch.rand(10) > 0.5).float()
    assert torch.equal(dropped, full * keep[:, None])  # rank_dropout_scale=False: no rescaling
    layer.rank_dropout_scale["default"] = True
    torch.manual_seed(3)
    assert torch.allclose(layer.get_delta_weight("default", apply_rank_dropout=True), full * (keep / keep.mean())[:, None])






def test_two_active_adapters_add_their_deltas(kronnet_factory, kron_targets, images):
    pristine = kronnet_factory()
    model = _lokr(kronnet_factory(), r=1, target_modules=kron_targets)
    model.add_adapter("more", LoKrConfig(r=2, target_modules=["lin", "conv1"], init_weights=False))
    model.base_model.set_adapter(["default", "more"])
    inner = model.base_model.model
    with torch.no_grad():
        for name in kron_targets:
            getattr(pristine, name).weight += getattr(inner, name).get_delta_weight("default")
        for name in ("lin", "conv1"):
            getattr(pristine, name).weight += getattr(inner, name).get_delta_weight("more")
        assert torch.allclose(model(images), pristine(images), atol=1e-5)


def test_gpt2_conv1d_is_refused():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=16))
    with pytest.raises(TypeError, match="Conv1D"):
        get_peft_model(model, LoKrConfig(target_modules=["c_attn"]))
