"""HRAConfig: HF's fields and defaults, validation, JSON round trip."""

from __future__ import annotations

import dataclasses

import pytest

from peft_core import ConfigError, PeftConfig
from peft_hra import HRAConfig


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def test_fields_and_defaults_equal_hf():
    peft = pytest.importorskip("peft")
    ours = {f.name: f for f in dataclasses.fields(HRAConfig)}
    theirs = {f.name: f for f in dataclasses.fields(peft.HRAConfig)}
    assert set(ours) == set(theirs)
    for name in theirs:
        if name not in ("peft_type", "peft_version"):
            assert _default(ours[name]) == _default(theirs[name]), name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target_modules": ".*q", "layers_to_transform": 0}, "layers_to_transform"),
        ({"target_modules": ".*q", "layers_pattern": "layers"}, "layers_pattern"),
        ({"layers_pattern": "layers"}, "layers_to_transform"),
        ({"bias": "some"}, "bias"),
    ],
)
def test_invalid_configs_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        HRAConfig(**kwargs)


def test_json_roundtrip(tmp_path):
    HRAConfig(r=4, apply_GS=True, target_modules=["q_proj"]).save_pretrained(tmp_path)
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, HRAConfig) and loaded.r == 4 and loaded.apply_GS and loaded.target_modules == {"q_proj"}
