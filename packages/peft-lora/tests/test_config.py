"""LoraConfig: defaults, validation, refusals of unimplemented HF options, JSON round trips."""

from __future__ import annotations

import json
import warnings

import pytest
from peft_core import ConfigError, PeftConfig, get_peft_method
from peft_lora import DEFAULT_TARGET_MODULES, KasaConfig, LoraConfig, LoraModel


def test_defaults_match_hf_0_21_2():
    c = LoraConfig()
    assert (c.peft_type, c.r, c.lora_alpha, c.lora_dropout, c.bias, c.init_lora_weights) == (
        "LORA",
        8,
        8,
        0.0,
        "none",
        True,
    )
    assert (c.use_rslora, c.use_dora, c.lora_bias, c.fan_in_fan_out) == (False, False, False, False)
    assert (c.rank_pattern, c.alpha_pattern, c.loftq_config, c.megatron_core, c.qalora_group_size) == (
        {},
        {},
        {},
        "megatron.core",
        16,
    )


def test_registration():
    method = get_peft_method("LORA")
    assert method.config_cls is LoraConfig and method.model_cls is LoraModel and method.prefix == "lora_"
    assert method.is_mixed_compatible
    assert method.default_target_modules["llama"] == ("q_proj", "v_proj")
    assert method.default_target_modules["gpt2"] == ("c_attn",)
    assert DEFAULT_TARGET_MODULES["bert"] == ["query", "value"] and DEFAULT_TARGET_MODULES["t5"] == ["q", "v"]


def test_json_written_like_hf(tmp_path):
    LoraConfig(
        r=4, target_modules=["v_proj", "q_proj"], exclude_modules=["b", "a"], task_type="CAUSAL_LM"
    ).save_pretrained(tmp_path)
    text = (tmp_path / "adapter_config.json").read_text()
    assert not text.endswith("\n")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["target_modules"] == ["q_proj", "v_proj"] and data["exclude_modules"] == ["a", "b"]
    assert data["inference_mode"] is False and data["peft_type"] == "LORA"  # as set (HF writes it as set too)
    assert data["peft_version"].startswith("0.21.2")
    assert "runtime_config" not in data
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, LoraConfig)
    assert loaded.target_modules == {"q_proj", "v_proj"} and loaded.r == 4


def test_unknown_field_warns_and_is_ignored(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "future_field": 1}))
    with pytest.warns(UserWarning, match="future_field"):
        config = PeftConfig.from_pretrained(tmp_path)
    assert config.r == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"use_qalora": True},
        {"megatron_config": {"tensor_model_parallel_size": 2}},
        {"arrow_config": {"top_k": 2}},
    ],
)
def test_unimplemented_options_are_refused(kwargs, tmp_path):
    with pytest.raises(ConfigError, match="not implement"):
        LoraConfig(**kwargs)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", **kwargs}))
    with pytest.raises(ConfigError):
        PeftConfig.from_pretrained(tmp_path)


def test_implemented_variant_configs_load_from_json(tmp_path):
    """BD-LoRA, VeLoRA and KaSA sub-configs round-trip through adapter_config.json; `{}` means "on, with defaults"."""
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "velora_config": {}, "use_bdlora": None, "target_modules": ["q"]})
    )
    config = PeftConfig.from_pretrained(tmp_path)
    assert config.velora_config.num_groups == 64 and config.to_dict()["velora_config"]["init_type"] == "batch_average"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "kasa_config": {}, "target_modules": ["q"]}))
    config = PeftConfig.from_pretrained(tmp_path)
    assert config.kasa_config == KasaConfig() and config.to_dict()["kasa_config"] == {"beta": 1e-4, "gamma": 1e-3}
    with pytest.raises(ConfigError, match="beta"):
        LoraConfig(kasa_config={"beta": -1.0})
    with pytest.raises(ConfigError, match="kasa_config"):
        LoraConfig(kasa_config={"lambda": 1})
    config = LoraConfig(monteclora_config={"num_samples": 2})
    assert config.to_dict()["monteclora_config"]["num_samples"] == 2 and config.monteclora_config.buffer_size == 150
    with pytest.raises(ConfigError, match="num_groups"):
        LoraConfig(velora_config={"num_groups": 0})


def test_unimplemented_options_at_their_defaults_load():
    LoraConfig(target_parameters=[], alora_invocation_tokens=None, use_bdlora=None, loftq_config={}, megatron_core="x")


@pytest.mark.parametrize("option", ["arrow_config"])
def test_an_empty_variant_config_is_not_unset(option, tmp_path):
    """Hugging Face PEFT turns a variant on for any non-None sub-config, `{}` included (its defaults)."""
    with pytest.raises(ConfigError, match=f"{option}=.*does not implement"):
        LoraConfig(**{option: {}})
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", option: {}}))
    with pytest.raises(ConfigError, match=option):
        PeftConfig.from_pretrained(tmp_path)
    assert LoraConfig(**{option: None}) and LoraConfig(megatron_config={})  # megatron_config={} is falsy in HF too


def test_loftq_config_without_loftq_is_ignored_like_hf():
    with pytest.warns(UserWarning, match="loftq_config"):
        config = LoraConfig(loftq_config={"loftq_bits": 4})
    assert config.loftq_config == {}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"r": 0}, "r must be a positive integer"),
        ({"r": -2}, "r must be a positive integer"),
        ({"lora_dropout": 1.0}, r"lora_dropout must be a probability in \[0, 1\)"),
        ({"lora_dropout": -0.1}, "lora_dropout"),
        ({"bias": "some"}, "bias must be one of"),
        ({"init_lora_weights": "kaiming"}, "Unknown initialization"),
        ({"init_lora_weights": "pissa_niter_x"}, "Unknown initialization"),
        ({"layers_pattern": "layers"}, "`layers_to_transform` must also be specified"),
        ({"target_modules": ".*q_proj", "layers_to_transform": [0]}, "cannot be used when `target_modules` is a str"),
        ({"target_modules": ".*q_proj", "layers_pattern": "layers"}, "cannot be used when `target_modules` is a str"),
        ({"lora_bias": True, "use_dora": True}, "not supported with DoRA"),
        ({"lora_bias": True, "init_lora_weights": "gaussian"}, "lora_bias=True is only supported"),
        ({"rank_pattern": {"q_proj": 0}}, "positive integer rank"),
        ({"rank_pattern": {"(": 2}}, "not a valid regex"),
        ({"use_dora": True, "init_lora_weights": "mica"}, "mica"),
        ({"task_type": "CAUSAL"}, "Invalid task_type"),
    ],
)
def test_invalid_values_have_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LoraConfig(**kwargs)


def test_wrong_json_types_are_config_errors(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": "8"}))
    with pytest.raises(ConfigError, match="wrong type"):
        PeftConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "value", [True, False, "gaussian", "Gaussian", "pissa", "pissa_niter_4", "olora", "orthogonal", "mica"]
)
def test_supported_inits(value):
    assert LoraConfig(init_lora_weights=value).init_lora_weights == value


def test_rslora_patterns_with_pissa_warns():
    with pytest.warns(UserWarning, match="Rank-Stabilized"):
        LoraConfig(use_rslora=True, rank_pattern={"q": 2}, init_lora_weights="pissa")


def test_no_warning_for_plain_config():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", use_dora=True, lora_dropout=0.05)
