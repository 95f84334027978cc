"""AdaLoraConfig: HF's fields and defaults, its checks, and rank_pattern masks."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest

from peft_core import ConfigError, PeftConfig
from peft_adalora import AdaLoraConfig
from peft_lora import LoraConfig


def test_extends_lora_config_and_has_hf_fields_and_defaults():
    peft = pytest.importorskip("peft")
    assert issubclass(AdaLoraConfig, LoraConfig)
    ours = {f.name: f for f in dataclasses.fields(AdaLoraConfig)}
    theirs = {f.name: f for f in dataclasses.fields(peft.AdaLoraConfig)}
    assert set(ours) == set(theirs)
    ours_cfg = AdaLoraConfig(total_step=10).to_dict()
    hf_cfg = peft.AdaLoraConfig(total_step=10).to_dict()
    for key in ("target_r", "init_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight", "rank_pattern",
                "r", "lora_alpha", "lora_dropout", "init_lora_weights", "alpha_pattern", "bias", "fan_in_fan_out"):
        assert ours_cfg[key] == hf_cfg[key], key
    assert ours_cfg["peft_type"] == "ADALORA"
    assert ours_cfg["rank_pattern"] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_parameters": ["experts.down_proj"]},
        {"trainable_token_indices": [1, 2]},
        {"alora_invocation_tokens": [1, 2]},
        {"layer_replication": [[0, 1]]},
        {"velora_config": {}},
        {"kasa_config": {}},
        {"monteclora_config": {}},
        {"use_bdlora": {}},
        {"init_lora_weights": "eva"},
        {"init_lora_weights": "corda"},
    ],
)
def test_lora_only_options_are_refused(kwargs):
    """Options peft-lora implements for LoRA layers but AdaLoRA's SVD layers do not."""
    with pytest.raises(ConfigError):
        AdaLoraConfig(total_step=10, **kwargs)


def test_total_step_is_required_even_to_load(tmp_path):
    with pytest.raises(ConfigError, match="total_step"):
        AdaLoraConfig()
    with pytest.raises(ConfigError, match="total_step"):
        AdaLoraConfig(total_step=0)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "ADALORA", "target_modules": ["q"]}))
    with pytest.raises(ConfigError, match="total_step"):
        PeftConfig.from_pretrained(tmp_path)


def test_r_is_ignored_with_hf_warning():
    with pytest.warns(UserWarning, match="`r` is not used in AdaLora"):
        AdaLoraConfig(total_step=10, r=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AdaLoraConfig(total_step=10)


def test_rank_pattern_masks_are_validated():
    config = AdaLoraConfig(total_step=10, init_r=3, rank_pattern={"lin.lora_E": [True, False, True]})
    assert config.rank_pattern == {"lin.lora_E": [True, False, True]}
    with pytest.raises(ConfigError, match="list of booleans"):
        AdaLoraConfig(total_step=10, init_r=3, rank_pattern={"lin.lora_E": 2})
    with pytest.raises(ConfigError, match="list of booleans"):
        AdaLoraConfig(total_step=10, init_r=3, rank_pattern={"lin.lora_E": [1, 0, 1]})
    with pytest.raises(ConfigError, match="init_r is 3"):
        AdaLoraConfig(total_step=10, init_r=3, rank_pattern={"lin.lora_E": [True, False]})


def test_json_round_trip(tmp_path):
    config = AdaLoraConfig(
        total_step=50, init_r=4, target_r=2, tinit=3, tfinal=4, deltaT=5, beta1=0.8, beta2=0.9, orth_reg_weight=0.3,
        target_modules=["q_proj", "v_proj"], rank_pattern={"model.q_proj.lora_E": [True, False, True, False]},
    )
    config.save_pretrained(tmp_path)
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert type(loaded) is AdaLoraConfig
    assert loaded.to_dict() == config.to_dict()  # PeftConfig.save_pretrained writes the fields as set
