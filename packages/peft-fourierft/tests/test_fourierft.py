"""FourierFT's own behaviour: config, frequency positions, ΔW math, merged weights, patterns, bias
modes. The conformance kit (test_conformance.py) checks the rest: merging, several adapters,
disabling, mixed batches, dtypes, save/load, low_cpu_mem_usage, bad configs, Hugging Face files."""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile

import pytest
import torch

from peft_core import ConfigError, get_peft_model
from peft_fourierft import (
    TARGET_MODULES,
    FourierFTConfig,
    n_frequency_for,
)


# -- config -------------------------------------------------------------------------------------
def test_config_fields_and_defaults_match_hf():
    import peft

    ours = {f.name: f for f in dataclasses.fields(FourierFTConfig)}
    theirs = {f.name: f for f in dataclasses.fields(peft.FourierFTConfig)}
    assert set(ours) == set(theirs)
    for name, f in theirs.items():
        if name in ("peft_type", "peft_version"):
            continue
        if f.default_factory is not dataclasses.MISSING:
            assert ours[name].default_factory() == f.default_factory(), name
        else:
            assert ours[name].default == f.default, name
    config = FourierFTConfig()
    assert config.peft_type == "FOURIERFT" and config.init_weights is False


def test_default_tables_match_hf():
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_FOURIERFT_TARGET_MODULES_MAPPING as hf

    assert {k: v if isinstance(v, str) else list(v) for k, v in TARGET_MODULES.items()} == hf
    assert TARGET_MODULES["gpt2"] == ("mlp.c_proj",)


def test_config_validation():
    with pytest.raises(ConfigError, match="n_frequency"):
        FourierFTConfig(n_frequency=0)
    with pytest.raises(ConfigError, match="random_loc_seed"):
        FourierFTConfig(random_loc_seed=None)
    with pytest.raises(ConfigError, match="bias"):
        FourierFTConfig(bias="some")
    with pytest.raises(ConfigError, match="layers_to_transform"):
        FourierFTConfig(target_modules=".*q_proj", layers_to_transform=[0])
    with pytest.raises(ConfigError, match="layers_pattern"):
        FourierFTConfig(target_modules=".*q_proj", layers_pattern="layers")
    with pytest.raises(ConfigError, match="layers_to_transform"):
        FourierFTConfig(layers_pattern="layers")


def test_too_many_frequencies_is_an_error(mlp):
    with pytest.raises(ValueError, match="exceeds"):
        get_peft_model(mlp, FourierFTConfig(target_modules=["lin0"], n_frequency=16 * 32 + 1))


# -- positions and ΔW ---------------------------------------------------------------------------
def _independent_indices(out_f: int, in_f: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator()
    gen.manual_seed(seed)
    flat = torch.randperm(out_f * in_f, generator=gen)[:n]
    return flat // in_f, flat % in_f


def _independent_delta(out_f: int, in_f: int, rows, cols, spectrum, scaling: float) -> torch.Tensor:
    """Re(ifft2(S)) * scaling written as an explicit inverse DFT (float64), independent of torch.fft."""
    m = torch.arange(out_f, dtype=torch.float64)[:, None, None]
    n = torch.arange(in_f, dtype=torch.float64)[None, :, None]
    k = rows.double()[None, None, :]
    l = cols.double()[None, None, :]
    phase = 2 * math.pi * (m * k / out_f + n * l / in_f)
    return (torch.cos(phase) * spectrum.double()).sum(-1) / (out_f * in_f) * scaling


def test_positions_are_seeded_per_layer_and_delta_matches_inverse_dft(tiny_llama, input_ids, randomize):
    config = FourierFTConfig(target_modules=["q_proj", "v_proj"], n_frequency=12, scaling=75.0, random_loc_seed=5)
    model = get_peft_model(tiny_llama, config)
    randomize(model)
    layers = model.base_model.model.model.layers
    q0, q1, v0 = layers[0].self_attn.q_proj, layers[1].self_attn.q_proj, layers[0].self_attn.v_proj
    rows, cols = _independent_indices(32, 32, 12, 5)
    assert torch.equal(q0.fourierft_indices["default"], torch.stack([rows, cols]))
    # Every layer is seeded again from the same seed: same-shaped layers share positions.
    assert torch.equal(q1.fourierft_indices["default"], q0.fourierft_indices["default"])
    v_rows, v_cols = _independent_indices(16, 32, 12, 5)
    assert torch.equal(v0.fourierft_indices["default"], torch.stack([v_rows, v_cols]))
    spectrum = v0.fourierft_spectrum["default"].detach()
    expected = _independent_delta(16, 32, v_rows, v_cols, spectrum, 75.0)
    delta = v0.get_delta_weight("default")
    assert delta.dtype == torch.float32
    torch.testing.assert_close(delta.double(), expected, rtol=0, atol=1e-5)
    h = torch.randn(3, 32)
    torch.testing.assert_close(v0(h), v0.get_base_layer()(h) + h @ delta.T, rtol=1e-6, atol=1e-6)


def test_default_init_is_random_and_init_weights_true_is_a_noop(mlp):
    x = torch.randn(3, 16)
    expected = mlp(x)
    random = get_peft_model(copy.deepcopy(mlp), FourierFTConfig(target_modules=["lin0"], n_frequency=10))
    assert not torch.allclose(random(x), expected)  # the default (init_weights=False) is NOT a no-op
    zero = get_peft_model(mlp, FourierFTConfig(target_modules=["lin0"], n_frequency=10, init_weights=True))
    assert torch.equal(zero.base_model.model.lin0.fourierft_spectrum["default"], torch.zeros(10))
    assert torch.equal(zero(x), expected)


def test_half_precision_spectrum_computes_delta_in_fp32(mlp):
    model = get_peft_model(
        mlp.to(torch.bfloat16), FourierFTConfig(target_modules=["lin0"], n_frequency=10), autocast_adapter_dtype=False
    )
    layer = model.base_model.model.lin0
    assert layer.fourierft_spectrum["default"].dtype == torch.bfloat16
    delta = layer.get_delta_weight("default")
    assert delta.dtype == torch.bfloat16
    out = model(torch.randn(2, 16, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


# -- n_frequency_pattern ------------------------------------------------------------------------
def test_n_frequency_pattern_uses_the_older_rule():
    config = FourierFTConfig(n_frequency=7, n_frequency_pattern={"q_proj": 3, "layers.1.self_attn.v_proj": 4, "lin0": 5})
    assert n_frequency_for(config, "model.layers.0.self_attn.q_proj") == 3
    assert n_frequency_for(config, "model.layers.1.self_attn.v_proj") == 4
    assert n_frequency_for(config, "model.layers.0.self_attn.v_proj") == 7
    assert n_frequency_for(config, "lin0") == 5  # no dot before it: only the exact-name fallback matches
    assert n_frequency_for(config, "xlin0") == 7  # `.*\.lin0$` needs a dot before the pattern
    first = FourierFTConfig(n_frequency_pattern={"proj": 1, "q_proj": 2})
    assert n_frequency_for(first, "a.q_proj") == 2  # "proj" needs ".proj" at the end
    ordered = FourierFTConfig(n_frequency_pattern={"self_attn.q_proj": 1, "q_proj": 2})
    assert n_frequency_for(ordered, "a.self_attn.q_proj") == 1  # first hit in insertion order


def test_n_frequency_pattern_in_a_model_and_unmatched_warning(tiny_llama):
    config = FourierFTConfig(target_modules=["q_proj", "v_proj"], n_frequency=6, n_frequency_pattern={"v_proj": 9, "nope": 2})
    with pytest.warns(RuntimeWarning, match="nope"):
        model = get_peft_model(tiny_llama, config)
    attn = model.base_model.model.model.layers[0].self_attn
    assert attn.q_proj.fourierft_spectrum["default"].shape == (6,)
    assert attn.v_proj.fourierft_spectrum["default"].shape == (9,)


# -- merging ------------------------------------------------------------------------------------
def test_merge_adds_the_delta_weight(mlp, randomize):
    base = copy.deepcopy(mlp)
    model = get_peft_model(mlp, FourierFTConfig(target_modules=["lin0", "lin1"], n_frequency=20, scaling=10.0))
    randomize(model)
    layer = model.base_model.model.lin1
    delta = layer.get_delta_weight("default").detach()
    model.merge_adapter()
    torch.testing.assert_close(layer.get_base_layer().weight, base.lin1.weight + delta, rtol=0, atol=0)


def test_conv1d_delta_has_the_stored_weight_layout(tiny_gpt2, randomize):
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        model = get_peft_model(tiny_gpt2, FourierFTConfig(n_frequency=30, task_type="CAUSAL_LM"))
    assert model.peft_config["default"].target_modules == {"mlp.c_proj"}
    layer = model.base_model.model.transformer.h[0].mlp.c_proj
    assert (layer.in_features, layer.out_features) == (128, 32)
    randomize(model)
    assert layer.get_delta_weight("default").shape == layer.get_base_layer().weight.shape == (128, 32)


# -- bias modes ---------------------------------------------------------------------------------
def test_bias_modes(mlp, saved_weights):
    model = get_peft_model(mlp, FourierFTConfig(target_modules=["lin0"], n_frequency=4, bias="fourier_only"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"base_model.model.lin0.fourierft_spectrum.default", "base_model.model.lin0.base_layer.bias"}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        assert "base_model.model.lin0.base_layer.bias" in saved_weights(tmp)
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("other", FourierFTConfig(target_modules=["lin1"], n_frequency=4, bias="all"))
