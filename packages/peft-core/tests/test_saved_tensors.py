"""`saved_tensor_shapes`: names and shapes of an adapter weights file without loading its data."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from peft_core.saved_tensors import saved_tensor_shapes


def test_reads_safetensors_header_and_legacy_bin(tmp_path):
    tensors = {"base_model.model.lin0.x_A.weight": torch.zeros(2, 8), "base_model.model.lin0.x_s": torch.ones(3)}
    save_file(tensors, str(tmp_path / "adapter_model.safetensors"), metadata={"format": "pt"})
    expected = {"base_model.model.lin0.x_A.weight": (2, 8), "base_model.model.lin0.x_s": (3,)}
    assert saved_tensor_shapes(str(tmp_path)) == expected

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save(tensors, legacy / "adapter_model.bin")
    assert saved_tensor_shapes(str(legacy)) == expected


def test_a_header_without_its_tensor_data_is_not_a_valid_file(tmp_path):
    import json

    header = json.dumps({"__metadata__": {"format": "pt"}, "k": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]}})
    raw = header.encode()
    (tmp_path / "adapter_model.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw)  # no tensor data
    assert saved_tensor_shapes(str(tmp_path)) == {}  # the safetensors library refuses it; loading reports it


def test_safetensors_wins_over_bin(tmp_path):
    save_file({"a": torch.zeros(1)}, str(tmp_path / "adapter_model.safetensors"))
    torch.save({"b": torch.zeros(2)}, tmp_path / "adapter_model.bin")
    assert saved_tensor_shapes(str(tmp_path)) == {"a": (1,)}


def test_missing_or_unreadable_files_give_nothing(tmp_path):
    assert saved_tensor_shapes(str(tmp_path)) == {}
    assert saved_tensor_shapes(str(tmp_path / "no-such-folder")) == {}
    (tmp_path / "adapter_model.safetensors").write_bytes(b"\x05")
    assert saved_tensor_shapes(str(tmp_path)) == {}
    (tmp_path / "adapter_model.safetensors").write_bytes((8).to_bytes(8, "little") + b"not json")
    assert saved_tensor_shapes(str(tmp_path)) == {}
    other = tmp_path / "bin"
    other.mkdir()
    (other / "adapter_model.bin").write_bytes(b"not a torch file")
    assert saved_tensor_shapes(str(other)) == {}
