"""OFTConfig: HF's fields and defaults, refusal of pre-0.16 adapters, old Neumann series (bad values are the
kit's `bad_config` check)."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from peft_core.testing.hf import config_differences, hf_peft_or_skip

from peft_core import ConfigError, PeftConfig, PeftModel
from peft_oft import OFTConfig


def test_fields_and_defaults_equal_hf():
    assert not config_differences(OFTConfig, hf_peft_or_skip().OFTConfig)
    assert OFTConfig().peft_type == "OFT"


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
