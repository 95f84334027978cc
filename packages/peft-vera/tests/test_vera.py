"""VeRA's own behaviour: config, projections, math, merged weights, bias modes, per-adapter
projections. The conformance kit (test_conformance.py) checks the rest: merging, several adapters,
disabling, mixed batches, dtypes, save/load, low_cpu_mem_usage, bad configs, Hugging Face files."""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile

import pytest
import torch
from torch import nn

from peft_core import AdapterLoadError, ConfigError, PeftModel, get_peft_model
from peft_core.testing.hf import config_differences
from peft_vera import TARGET_MODULES, VeraConfig, VeraLinear


# -- config -------------------------------------------------------------------------------------
def test_config_fields_and_defaults_match_hf():
    import peft

    assert not config_differences(VeraConfig, peft.VeraConfig)
    assert "exclude_modules" not in {f.name for f in dataclasses.fields(VeraConfig)}
    assert VeraConfig().peft_type == "VERA"


def test_default_tables_match_hf():
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_VERA_TARGET_MODULES_MAPPING as hf

    assert {k: v if isinstance(v, str) else list(v) for k, v in TARGET_MODULES.items()} == hf
    assert TARGET_MODULES["phi"] == ("q_proj", "v_proj")


@pytest.mark.parametrize(
    "fields, match",
    [({"r": 0}, "r must be"), ({"bias": "lora"}, "bias"), ({"layers_pattern": "layers"}, "layers_to_transform")],
)
def test_config_validation(fields, match):
    with pytest.raises(ConfigError, match=match):
        VeraConfig(**fields)


def test_save_projection_off_warns():
    with pytest.warns(UserWarning, match="save_projection=False"):
        VeraConfig(save_projection=False)


def test_regex_default_for_gemma4():
    model = nn.Module()
    model.config = {"model_type": "gemma4"}
    from peft_vera import VeraModel

    config = VeraConfig()
    assert VeraModel._prepare_adapter_config(object.__new__(VeraModel), config, model).target_modules == (
        TARGET_MODULES["gemma4"]
    )


# -- keys, shapes, projections ------------------------------------------------------------------
def test_keys_and_shapes_on_llama(tiny_llama, saved_weights):
    model = get_peft_model(tiny_llama, VeraConfig(r=4, task_type="CAUSAL_LM"))  # default targets q_proj, v_proj
    assert model.peft_config["default"].target_modules == {"q_proj", "v_proj"}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        weights = saved_weights(tmp)
    f32 = torch.float32
    expected = {"base_model.vera_A": ((4, 32), f32), "base_model.vera_B": ((32, 4), f32)}
    for i in range(2):
        p = f"base_model.model.model.layers.{i}.self_attn"
        expected[f"{p}.q_proj.vera_lambda_b"] = ((32,), f32)
        expected[f"{p}.q_proj.vera_lambda_d"] = ((4,), f32)
        expected[f"{p}.v_proj.vera_lambda_b"] = ((16,), f32)
        expected[f"{p}.v_proj.vera_lambda_d"] = ((4,), f32)
    assert weights == expected
    assert "base_model.vera_A.default" in dict(model.named_buffers())


def _independent_projections(r: int, max_in: int, max_out: int, key: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Format doc §3.3, written out independently of the package."""
    gen = torch.Generator(device="cpu").manual_seed(key)
    out = []
    for shape in ((r, max_in), (max_out, r)):
        bound = math.sqrt(3.0) * (math.sqrt(2) / math.sqrt(shape[1]))
        out.append(torch.empty(shape).uniform_(-bound, bound, generator=gen))
    return out[0], out[1]


def test_projections_follow_the_prng_key_and_max_dims(tiny_llama):
    config = VeraConfig(r=3, target_modules=["v_proj", "down_proj"], projection_prng_key=42)
    model = get_peft_model(tiny_llama, config)
    # v_proj: 32 -> 16, down_proj: 64 -> 32, so max_in = 64, max_out = 32.
    a, b = _independent_projections(3, 64, 32, 42)
    assert torch.equal(model.base_model.vera_A["default"], a)
    assert torch.equal(model.base_model.vera_B["default"], b)
    assert not model.base_model.vera_A["default"].requires_grad


def test_save_projection_false_regenerates_from_key(tiny_llama, input_ids, randomize, saved_weights):
    pristine = copy.deepcopy(tiny_llama)
    with pytest.warns(UserWarning, match="save_projection"):
        config = VeraConfig(r=4, target_modules=["q_proj", "v_proj"], save_projection=False, projection_prng_key=9)
    model = get_peft_model(tiny_llama, config)
    randomize(model)
    expected = model(input_ids).logits
    assert "base_model.vera_A.default" not in model.state_dict()  # non-persistent, as in HF
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        assert not any(k.startswith("base_model.vera_") for k in saved_weights(tmp))
        torch.manual_seed(1234)  # the regeneration must not depend on the global RNG
        with pytest.warns(UserWarning, match="save_projection"):
            loaded = PeftModel.from_pretrained(pristine, tmp)
    assert torch.equal(loaded(input_ids).logits, expected)


def test_missing_projection_keys_are_an_error(mlp):
    pristine = copy.deepcopy(mlp)
    model = get_peft_model(mlp, VeraConfig(r=2, target_modules=["lin0"]))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        from safetensors.torch import load_file, save_file

        path = f"{tmp}/adapter_model.safetensors"
        weights = {k: v for k, v in load_file(path).items() if not k.startswith("base_model.vera_")}
        save_file(weights, path)
        with pytest.raises(AdapterLoadError, match="vera_A"):
            PeftModel.from_pretrained(pristine, tmp)


# -- math ---------------------------------------------------------------------------------------
def test_forward_math(mlp, randomize):
    base = copy.deepcopy(mlp)
    model = get_peft_model(mlp, VeraConfig(r=3, target_modules=["lin0", "lin1"]))
    randomize(model)
    tuner = model.base_model
    a, b = tuner.vera_A["default"], tuner.vera_B["default"]
    assert a.shape == (3, 32) and b.shape == (32, 3)  # lin0 16->32, lin1 32->32
    x = torch.randn(5, 16)

    def delta(layer: VeraLinear, inp: torch.Tensor) -> torch.Tensor:
        ld, lb = layer.vera_lambda_d["default"], layer.vera_lambda_b["default"]
        return lb * ((ld * (inp @ a[:, : layer.in_features].T)) @ b[: layer.out_features].T)

    m = tuner.model
    h = base.norm(torch.relu(base.lin0(x) + delta(m.lin0, x)))
    h = torch.relu(base.lin1(h) + delta(m.lin1, h))
    expected = base.lin2(h)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


def test_init_weights_is_a_noop_and_uses_d_initial(mlp):
    x = torch.randn(3, 16)
    expected = mlp(x)
    model = get_peft_model(mlp, VeraConfig(r=4, target_modules=["lin0", "lin1"], d_initial=0.25))
    layer = model.base_model.model.lin0
    assert torch.equal(layer.vera_lambda_b["default"], torch.zeros(32))
    assert torch.equal(layer.vera_lambda_d["default"], torch.full((4,), 0.25))
    assert torch.equal(model(x), expected)


def test_dropout(mlp, randomize):
    model = get_peft_model(mlp, VeraConfig(r=4, target_modules=["lin0"], vera_dropout=0.5))
    randomize(model)
    assert isinstance(model.base_model.model.lin0.vera_dropout["default"], nn.Dropout)
    x = torch.randn(64, 16)
    model.train()
    torch.manual_seed(0)
    train_out = model(x)
    model.eval()
    assert not torch.allclose(train_out, model(x))
    assert torch.equal(model(x), model(x))


def test_unsupported_layer_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError, match="not supported"):
        get_peft_model(model, VeraConfig(r=2, target_modules=["0"]))


def test_layers_to_transform(tiny_llama):
    model = get_peft_model(tiny_llama, VeraConfig(r=2, target_modules=["q_proj"], layers_to_transform=[1]))
    layers = model.base_model.model.model.layers
    assert not isinstance(layers[0].self_attn.q_proj, VeraLinear)
    assert isinstance(layers[1].self_attn.q_proj, VeraLinear)


# -- merging ------------------------------------------------------------------------------------
def test_merge_unmerge_and_hand_computed_weights(mlp, randomize):
    base = copy.deepcopy(mlp)
    model = get_peft_model(mlp, VeraConfig(r=3, target_modules=["lin0", "lin1"]))
    randomize(model)
    x = torch.randn(4, 16)
    expected = model(x)
    layer = model.base_model.model.lin1
    a, b = model.base_model.vera_A["default"], model.base_model.vera_B["default"]
    ld, lb = layer.vera_lambda_d["default"].detach(), layer.vera_lambda_b["default"].detach()
    manual = base.lin1.weight + (lb[:, None] * b[:32]) @ (ld[:, None] * a[:, :32])
    model.merge_adapter()
    torch.testing.assert_close(layer.get_base_layer().weight, manual, rtol=0, atol=1e-6)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
    model.unmerge_adapter()
    torch.testing.assert_close(layer.get_base_layer().weight, base.lin1.weight, rtol=0, atol=1e-6)
    merged = model.merge_and_unload()
    assert isinstance(merged.lin0, nn.Linear) and isinstance(merged.lin1, nn.Linear)
    assert not any(isinstance(m, VeraLinear) for m in merged.modules())
    torch.testing.assert_close(merged(x), expected, rtol=1e-5, atol=1e-6)
    assert len(model.base_model.vera_A) == 0  # the tuner dropped its projections


# -- GPT-2 Conv1D -------------------------------------------------------------------------------
def test_conv1d_sets_fan_in_fan_out_and_sizes_projections(tiny_gpt2):
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        model = get_peft_model(tiny_gpt2, VeraConfig(r=4, target_modules=["c_attn", "mlp.c_proj"]))
    assert model.peft_config["default"].fan_in_fan_out is True
    assert model.base_model.vera_A["default"].shape == (4, 128)  # mlp.c_proj: 128 -> 32
    assert model.base_model.vera_B["default"].shape == (96, 4)  # c_attn: 32 -> 96


# -- bias modes ---------------------------------------------------------------------------------
def test_bias_vera_only(mlp, saved_weights):
    model = get_peft_model(mlp, VeraConfig(r=2, target_modules=["lin0"], bias="vera_only"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "base_model.model.lin0.vera_lambda_b.default",
        "base_model.model.lin0.vera_lambda_d.default",
        "base_model.model.lin0.base_layer.bias",
    }
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        assert "base_model.model.lin0.base_layer.bias" in saved_weights(tmp)


def test_bias_all_and_single_bias_adapter(mlp, saved_weights):
    model = get_peft_model(mlp, VeraConfig(r=2, target_modules=["lin0"], bias="all"))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        biases = {k for k in saved_weights(tmp) if k.endswith("bias")}
    assert biases == {
        "base_model.model.lin0.base_layer.bias",
        "base_model.model.norm.bias",
        "base_model.model.lin1.bias",
        "base_model.model.lin2.bias",
    }
    with pytest.raises(ValueError, match="only 1 adapter with bias"):
        model.add_adapter("other", VeraConfig(r=2, target_modules=["lin1"], bias="vera_only"))
    assert "other" not in model.peft_config


# -- several adapters ---------------------------------------------------------------------------
def test_several_adapters_have_their_own_projections(mlp, randomize):
    model = get_peft_model(mlp, VeraConfig(r=4, target_modules=["lin0", "lin1"]))
    model.add_adapter("small", VeraConfig(r=2, target_modules=["lin1", "lin2"], projection_prng_key=7))
    randomize(model)
    tuner = model.base_model
    assert tuner.vera_A["default"].shape == (4, 32) and tuner.vera_B["default"].shape == (32, 4)
    a, b = _independent_projections(2, 32, 32, 7)
    assert torch.equal(tuner.vera_A["small"], a) and torch.equal(tuner.vera_B["small"], b)
    x = torch.randn(3, 16)
    out_default = model(x)
    # Both active at once: on a layer both adapt (lin1), the two deltas add up.
    model.set_adapter(["default", "small"])
    lin1, h = model.base_model.model.lin1, torch.randn(2, 32)
    with model.disable_adapter():
        base_h = lin1(h)
    both = lin1(h)
    model.set_adapter("small")
    only_small = lin1(h)
    model.set_adapter("default")
    only_default = lin1(h)
    torch.testing.assert_close(both - base_h, (only_default - base_h) + (only_small - base_h), rtol=0, atol=1e-6)
    model.delete_adapter("small")
    assert "small" not in tuner.vera_A and "small" not in tuner.vera_B
    assert torch.equal(model(x), out_default)


def test_inject_adapter_in_model_refuses_shared_state_up_front(tiny_llama):
    """The projections live on the tuner, which inject_adapter_in_model would drop: refused, model untouched."""
    from peft_core import inject_adapter_in_model
    from peft_vera import VeraModel

    assert VeraModel.uses_shared_state
    before = {name: type(module) for name, module in tiny_llama.named_modules()}
    with pytest.raises(ValueError, match="shared state.*get_peft_model"):
        inject_adapter_in_model(VeraConfig(target_modules=["q_proj"]), tiny_llama)
    assert {name: type(module) for name, module in tiny_llama.named_modules()} == before
