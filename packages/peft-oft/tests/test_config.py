"""OFTConfig: HF's fields and defaults, validation, and refusal of pre-0.16 adapters."""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest
import torch

from peft_core import ConfigError, PeftConfig, PeftModel
from peft_oft import OFTConfig


def test_fields_and_defaults_equal_hf():
    peft = pytest.importorskip("peft")
    ours = {f.name: f for f in dataclasses.fields(OFTConfig)}
    theirs = {f.name: f for f in dataclasses.fields(peft.OFTConfig)}
    assert set(ours) == set(theirs)
    for name, f in theirs.items():
        if name in ("peft_type", "peft_version"):
            continue
        mine = ours[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        my_default = mine.default_factory() if mine.default_factory is not dataclasses.MISSING else mine.default
        assert my_default == default, name
    assert OFTConfig().peft_type == "OFT"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"r": 0, "oft_block_size": 0}, "non-zero"),
        ({"r": 4, "oft_block_size": 8}, "not both"),
        ({"layers_pattern": "layers"}, "layers_to_transform"),
        ({"bias": "some"}, "bias"),
        ({"init_weights": "gaussian"}, "init_weights"),
    ],
)
def test_invalid_configs_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OFTConfig(**kwargs)


def test_sets_and_json_roundtrip(tmp_path):
    config = OFTConfig(target_modules=["v_proj", "q_proj"], r=4, oft_block_size=0, bias="oft_only")
    assert config.target_modules == {"q_proj", "v_proj"}
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    assert data["target_modules"] == ["q_proj", "v_proj"] and data["peft_type"] == "OFT"
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, OFTConfig) and loaded.r == 4 and loaded.oft_block_size == 0


def test_config_without_oft_block_size_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "OFT", "r": 8, "target_modules": ["q"]}))
    with pytest.raises(ConfigError, match="PEFT < 0.14"):
        PeftConfig.from_pretrained(tmp_path)


def _write_safetensors_header(path, keys):
    header = {k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, k in enumerate(keys)}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4 * len(keys))


@pytest.mark.parametrize("key", ["base_model.model.lin0.oft_r", "base_model.model.lin0.oft_s"])
def test_pre_016_weights_are_refused(tmp_path, key):
    data = {"peft_type": "OFT", "r": 0, "oft_block_size": 4, "target_modules": ["lin0"], "peft_version": "0.15.2"}
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    _write_safetensors_header(tmp_path / "adapter_model.safetensors", [key])
    with pytest.raises(ConfigError, match="pre-v0.16"):
        PeftModel.from_pretrained(torch.nn.Sequential(), tmp_path)


def test_pre_016_bin_weights_are_refused(tmp_path):
    data = {"peft_type": "OFT", "r": 0, "oft_block_size": 4, "target_modules": ["lin0"]}
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    torch.save({"base_model.model.lin0.oft_r": torch.zeros(2, 4, 4)}, tmp_path / "adapter_model.bin")
    with pytest.raises(ConfigError, match="peft<=0.15.2"):
        PeftConfig.from_pretrained(tmp_path)


def test_old_neumann_adapter_warns(tmp_path):
    data = {"peft_type": "OFT", "oft_block_size": 4, "use_cayley_neumann": True, "peft_version": "0.17.1"}
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="before PEFT 0.18"):
        PeftConfig.from_pretrained(tmp_path)
    data["peft_version"] = "0.21.2@peft-core-0.1.0"
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PeftConfig.from_pretrained(tmp_path)


def test_unknown_fields_warn_and_are_dropped(tmp_path):
    data = {"peft_type": "OFT", "oft_block_size": 4, "peft_version": "0.30.0", "future_knob": 1}
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="future_knob"):
        config = PeftConfig.from_pretrained(tmp_path)
    assert not hasattr(config, "future_knob")
