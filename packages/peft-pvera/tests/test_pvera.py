"""What is particular to PVeRA: the projections (drawn as Hugging Face PEFT draws them), the mean /
log-variance bottleneck in eval and training, sampling at inference, and the mean-only merge; each
against an independent computation or HF itself. The conformance kit checks the rest."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from peft_core import get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_peft

from peft_pvera import PveraConfig, PveraLinear, draw_projections

torch.set_num_threads(1)


def _adapted(config: PveraConfig):
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), config)
    return base, model



def test_projections_are_kaiming_uniform_from_the_key():
    a, b = draw_projections(3, 10, 7, key=5)
    assert a.shape == (6, 10) and b.shape == (7, 3)
    assert a.abs().max() <= math.sqrt(6 / 10) and b.abs().max() <= math.sqrt(6 / 3)
    a2, b2 = draw_projections(3, 10, 7, key=5)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    assert not torch.equal(a, draw_projections(3, 10, 7, key=6)[0])


def test_eval_forward_uses_the_mean_half():
    base, model = _adapted(PveraConfig(r=3, target_modules=["lin1"], init_weights=False))
    layer = model.base_model.model.lin1
    assert isinstance(layer, PveraLinear)
    a, b = model.base_model.pvera_A["default"], model.base_model.pvera_B["default"]
    assert a.shape == (6, 32) and b.shape == (32, 3)
    lam_d, lam_b = layer.pvera_lambda_d["default"], layer.pvera_lambda_b["default"]
    x = torch.randn(4, 32)
    mean = lam_d[:3] * (x @ a[:3].T)
    expected = base.lin1(x) + lam_b * (mean @ b.T)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().base_model.model.lin1(x), expected)
        delta = layer.get_delta_weight("default")
        torch.testing.assert_close(delta, (lam_b[:, None] * b) @ (lam_d[:3, None] * a[:3]))


def test_training_samples_with_each_layers_seeded_generator():
    base, model = _adapted(PveraConfig(r=2, target_modules=["lin1"], init_weights=False, generator_seed=11))
    layer = model.base_model.model.lin1.train()
    a, b = model.base_model.pvera_A["default"], model.base_model.pvera_B["default"]
    lam_d, lam_b = layer.pvera_lambda_d["default"], layer.pvera_lambda_b["default"]
    x = torch.randn(5, 32)
    h = lam_d * (x @ a.T)
    mean, logvar = h[:, :2], h[:, 2:]
    noise = torch.randn((5, 2), generator=torch.Generator().manual_seed(11))
    expected = base.lin1(x) + lam_b * ((mean + noise * torch.exp(0.5 * logvar)) @ b.T)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)
        assert not torch.equal(layer(x), expected)  # the generator moved on: the next sample differs


def test_sample_at_inference_makes_eval_outputs_random():
    _, model = _adapted(PveraConfig(r=2, target_modules=["lin1"], init_weights=False, sample_at_inference=True))
    model.eval()
    x = torch.randn(3, 16)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
    assert not model.base_model.model.lin1.supports_delta_weight("default")


def test_each_adapter_owns_projections_sized_for_its_layers():
    _, model = _adapted(PveraConfig(r=2, target_modules=["lin2"]))
    model.add_adapter("wide", PveraConfig(r=4, projection_prng_key=1, target_modules=["lin0", "lin1"]))
    tuner = model.base_model
    assert tuner.pvera_A["default"].shape == (4, 32) and tuner.pvera_B["default"].shape == (16, 2)
    assert tuner.pvera_A["wide"].shape == (8, 32) and tuner.pvera_B["wide"].shape == (32, 4)
    model.delete_adapter("wide")
    assert "wide" not in tuner.pvera_A and "wide" not in tuner.pvera_B


@pytest.mark.parametrize("train", [False, True])
def test_outputs_match_hugging_face_for_the_same_weights(train):
    peft = hf_peft()
    if peft is None:
        pytest.skip("Hugging Face PEFT is not installed")
    base = models.MLP.build()
    kwargs = dict(r=3, target_modules=["lin0", "lin2"], init_weights=False, generator_seed=4)
    ours = get_peft_model(copy.deepcopy(base), PveraConfig(**kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(copy.deepcopy(base), peft.PveraConfig(**kwargs))
    assert torch.equal(ours.base_model.pvera_A["default"], theirs.base_model.pvera_A["default"])
    assert torch.equal(ours.base_model.pvera_B["default"], theirs.base_model.pvera_B["default"])
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if "pvera_lambda" in k}, strict=False)
    ours.train(train)
    theirs.train(train)
    x = torch.randn(4, 16)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
        if not train:
            ours_merged, theirs_merged = ours.merge_and_unload(), theirs.merge_and_unload()
            assert torch.equal(ours_merged.lin0.weight, theirs_merged.lin0.weight)


def test_mixed_batch_rows_follow_their_adapter():
    base, model = _adapted(PveraConfig(r=2, target_modules=["lin1"], init_weights=False))
    model.add_adapter("b", PveraConfig(r=2, target_modules=["lin1"], projection_prng_key=7, init_weights=False))
    model.eval()
    x = torch.randn(3, 16)
    with torch.no_grad():
        mixed = model(x, adapter_names=["b", "default", "__base__"])
        first = model(x)
        model.set_adapter("b")
        second = model(x)
    torch.testing.assert_close(mixed[0], second[0])
    torch.testing.assert_close(mixed[1], first[1])
    torch.testing.assert_close(mixed[2], base(x)[2])


def test_conv1d_uses_the_transposed_delta():
    base = models.GPT2.build()
    model = get_peft_model(copy.deepcopy(base), PveraConfig(r=2, target_modules=["c_attn"], init_weights=False))
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    assert model.peft_config["default"].fan_in_fan_out is True
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        expected = F.linear(x, (base.transformer.h[0].attn.c_attn.weight + layer.get_delta_weight("default")).T,
                            base.transformer.h[0].attn.c_attn.bias)
        torch.testing.assert_close(layer.eval()(x), expected, atol=1e-5, rtol=1e-5)
