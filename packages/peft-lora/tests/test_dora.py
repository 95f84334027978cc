"""DoRA: forward and merged weights against the formulas (format doc §5.2), written out independently.

n = ‖W + s·B@A‖ per output channel,  y = (m/n)·(W + s·B@A)·x + bias,  W' = (m/n) ⊙ (W + s·B@A)
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from _lora_test_models import conv_net, emb_mlp, input_ids, randomize_lora, tiny_gpt2
from peft_core import get_peft_model
from peft_lora import LoraConfig


def _model(make, targets, **extra):
    base = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(
            copy.deepcopy(base), LoraConfig(r=3, lora_alpha=6, target_modules=targets, use_dora=True, **extra)
        )
    return base, model.eval()


def _dora_factors(layer, name="default"):
    """The LoRA factors A and B, the scaling and the DoRA magnitude of `layer`'s adapter `name`."""
    magnitude = layer.lora_magnitude_vector[name].weight
    return layer.lora_A[name].weight, layer.lora_B[name].weight, layer.scaling[name], magnitude


def test_magnitude_starts_at_the_weight_norm():
    base, model = _model(emb_mlp, ["lin0", "emb"], init_lora_weights=False)
    lin = model.base_model.model.lin0
    a, b, s = lin.lora_A["default"].weight, lin.lora_B["default"].weight, lin.scaling["default"]
    torch.testing.assert_close(lin.lora_magnitude_vector["default"].weight, (base.lin0.weight + s * b @ a).norm(dim=1))
    emb = model.base_model.model.emb
    a, b = emb.lora_embedding_A["default"], emb.lora_embedding_B["default"]
    torch.testing.assert_close(
        emb.lora_magnitude_vector["default"].weight, (base.emb.weight.T + emb.scaling["default"] * b @ a).norm(dim=1)
    )


def test_linear_dora_forward():
    base, model = _model(emb_mlp, ["lin0"])
    randomize_lora(model)
    layer = model.base_model.model.lin0
    a, b, s, m = _dora_factors(layer)
    v = base.lin0.weight + s * b @ a
    x = torch.randn(4, 16)
    expected = F.linear(x, (m / v.norm(dim=1))[:, None] * v, base.lin0.bias)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_conv1d_gpt2_dora_forward():
    base, model = _model(tiny_gpt2, ["c_attn"])
    randomize_lora(model)
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    conv = base.transformer.h[0].attn.c_attn
    a, b, s, m = _dora_factors(layer)
    v = conv.weight.T + s * b @ a  # (out, in)
    x = torch.randn(2, 3, 32)
    expected = x @ ((m / v.norm(dim=1))[:, None] * v).T + conv.bias
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert m.shape == (96,)


def test_embedding_dora_forward():
    base, model = _model(emb_mlp, ["emb"])
    randomize_lora(model)
    layer = model.base_model.model.emb
    a, b, s = layer.lora_embedding_A["default"], layer.lora_embedding_B["default"], layer.scaling["default"]
    m = layer.lora_magnitude_vector["default"].weight
    v = base.emb.weight + s * (b @ a).T  # (num, dim)
    scaled = v * (m / v.norm(dim=0))[None, :]  # per embedding dimension
    ids = input_ids()
    with torch.no_grad():
        torch.testing.assert_close(layer(ids), scaled[ids], atol=1e-5, rtol=1e-5)


def test_conv2d_dora_forward_and_magnitude_shape():
    base, model = _model(conv_net, ["conv2d"])
    randomize_lora(model)
    layer = model.base_model.model.conv2d
    a, b, s, m = _dora_factors(layer)
    assert m.shape == (1, 8, 1, 1)
    v = base.conv2d.weight + s * torch.einsum("ok,kihw->oihw", b[:, :, 0, 0], a)
    norm = v.flatten(1).norm(dim=1)
    x = torch.randn(2, 3, 8, 8)
    expected = F.conv2d(x, (m.view(-1) / norm).view(-1, 1, 1, 1) * v, base.conv2d.bias, padding=1)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_dora_merged_weight_is_the_formula():
    base, model = _model(emb_mlp, ["lin0"])
    randomize_lora(model)
    layer = model.base_model.model.lin0
    a, b, s, m = _dora_factors(layer)
    m = m.detach()
    v = (base.lin0.weight + s * b @ a).detach()
    model.merge_adapter()
    torch.testing.assert_close(layer.get_base_layer().weight, (m / v.norm(dim=1))[:, None] * v, atol=1e-6, rtol=1e-5)


def test_dora_with_dropout_in_training_uses_the_dropped_input_for_both_terms():
    base, model = _model(emb_mlp, ["lin0"], lora_dropout=0.5)
    randomize_lora(model)
    layer = model.base_model.model.lin0
    layer.train()
    x = torch.randn(4, 16)
    torch.manual_seed(3)
    out = layer(x)
    torch.manual_seed(3)
    dropped = layer.lora_dropout["default"](x)
    a, b, s, m = _dora_factors(layer)
    w = base.lin0.weight
    mag = m / (w + s * b @ a).norm(dim=1).detach()
    expected = base.lin0(x) + (mag - 1) * F.linear(dropped, w) + mag * s * (dropped @ a.T @ b.T)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert layer.lora_magnitude_vector["default"].weight.grad is not None
