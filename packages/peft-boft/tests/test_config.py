"""BOFTConfig: HF's fields and defaults, validation, JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from peft_boft import BOFTConfig
from peft_core import ConfigError, PeftConfig


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def test_fields_and_defaults_equal_hf():
    peft = pytest.importorskip("peft")
    ours = {f.name: f for f in dataclasses.fields(BOFTConfig)}
    theirs = {f.name: f for f in dataclasses.fields(peft.BOFTConfig)}
    assert set(ours) == set(theirs)
    for name in theirs:
        if name not in ("peft_type", "peft_version"):
            assert _default(ours[name]) == _default(theirs[name]), name
    assert BOFTConfig().peft_type == "BOFT"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"boft_block_size": 0, "boft_block_num": 0}, "non-zero"),
        ({"boft_block_size": 4, "boft_block_num": 8}, "not both"),
        ({"boft_n_butterfly_factor": 0}, "positive"),
        ({"layers_pattern": "layers"}, "layers_to_transform"),
        ({"bias": "yes"}, "bias"),
        ({"boft_dropout": -0.1}, "negative"),
    ],
)
def test_invalid_configs_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BOFTConfig(**kwargs)


def test_json_roundtrip(tmp_path):
    config = BOFTConfig(target_modules=["v_proj", "q_proj"], boft_block_size=0, boft_block_num=8, boft_n_butterfly_factor=2)
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    assert data["peft_type"] == "BOFT" and data["target_modules"] == ["q_proj", "v_proj"]
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, BOFTConfig) and loaded.boft_block_num == 8 and loaded.boft_n_butterfly_factor == 2
