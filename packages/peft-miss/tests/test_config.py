"""MissConfig: HF's fields and defaults, validation, JSON round trip."""

from __future__ import annotations

import dataclasses

import pytest

from peft_core import ConfigError, PeftConfig
from peft_miss import MissConfig


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def test_fields_and_defaults_equal_hf():
    peft = pytest.importorskip("peft")
    ours = {f.name: f for f in dataclasses.fields(MissConfig)}
    theirs = {f.name: f for f in dataclasses.fields(peft.MissConfig)}
    assert set(ours) == set(theirs)
    for name in theirs:
        if name not in ("peft_type", "peft_version"):
            assert _default(ours[name]) == _default(theirs[name]), name
    assert MissConfig().peft_type == "MISS"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target_modules": ".*q", "layers_to_transform": 0}, "layers_to_transform"),
        ({"target_modules": ".*q", "layers_pattern": "layers"}, "layers_pattern"),
        ({"init_weights": "pissa"}, "init_weights"),
        ({"bias": "some"}, "bias"),
        ({"miss_dropout": 1.5}, "miss_dropout"),
    ],
)
def test_invalid_configs_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MissConfig(**kwargs)


@pytest.mark.parametrize("variant", [True, False, "bat", "mini"])
def test_json_roundtrip(tmp_path, variant):
    MissConfig(r=4, mini_r=2, init_weights=variant, target_modules=["q_proj"]).save_pretrained(tmp_path)
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MissConfig) and loaded.init_weights == variant and loaded.mini_r == 2
