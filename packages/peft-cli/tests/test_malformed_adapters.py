"""`peft inspect` and `peft merge` on damaged adapter folders: a non-zero exit and one line, never a traceback.

Each case damages a copy of a valid LoRA folder in one way; `peft inspect` must exit 1 with a message
naming the file, and `peft merge` must refuse the adapter before it loads the base model.
"""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"


def _header(path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]


def _write_raw(path, header, data: bytes) -> None:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def truncated(folder):
    path = folder / WEIGHTS
    path.write_bytes(path.read_bytes()[:-100])


def overlapping(folder):
    header, data = _header(folder / WEIGHTS)
    names = [k for k in header if k != "__metadata__"]
    header[names[1]]["data_offsets"] = header[names[0]]["data_offsets"]
    _write_raw(folder / WEIGHTS, header, data)


def trailing_bytes(folder):
    path = folder / WEIGHTS
    path.write_bytes(path.read_bytes() + b"\0" * 64)


def header_not_an_object(folder):
    _write_raw(folder / WEIGHTS, [1, 2, 3], b"")


def header_entry_without_shape(folder):
    header, data = _header(folder / WEIGHTS)
    name = next(k for k in header if k != "__metadata__")
    del header[name]["shape"]
    _write_raw(folder / WEIGHTS, header, data)


def shape_with_text(folder):
    header, data = _header(folder / WEIGHTS)
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = ["four", 32]
    _write_raw(folder / WEIGHTS, header, data)


def huge_header_length(folder):
    (folder / WEIGHTS).write_bytes(struct.pack("<Q", 2**62) + b"{}")


def bin_that_is_a_list(folder):
    (folder / WEIGHTS).unlink()
    torch.save([torch.zeros(2)], folder / "adapter_model.bin")


def config_with_a_huge_integer(folder):
    text = (folder / CONFIG).read_text().replace('"r": 4', '"r": 1' + "0" * 5000)
    (folder / CONFIG).write_text(text)


def config_nested_too_deeply(folder):
    data = json.loads((folder / CONFIG).read_text())
    (folder / CONFIG).write_text(json.dumps(data)[:-1] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}")


def config_is_a_folder(folder):
    (folder / CONFIG).unlink()
    (folder / CONFIG).mkdir()


def weights_of_another_save(folder):
    """New weights next to the old config (a save killed between its two renames)."""
    data = json.loads((folder / CONFIG).read_text())
    data["lora_alpha"] = 64
    (folder / CONFIG).write_text(json.dumps(data))


DAMAGE = [
    truncated,
    overlapping,
    trailing_bytes,
    header_not_an_object,
    header_entry_without_shape,
    shape_with_text,
    huge_header_length,
    bin_that_is_a_list,
    config_with_a_huge_integer,
    config_nested_too_deeply,
    config_is_a_folder,
    weights_of_another_save,
]


@pytest.fixture
def damaged(lora_dir, tmp_path, request):
    folder = tmp_path / f"damaged-{request.param.__name__}"
    shutil.copytree(lora_dir, folder)
    request.param(folder)
    return folder


@pytest.mark.parametrize("damaged", DAMAGE, indirect=True, ids=[d.__name__ for d in DAMAGE])
def test_inspect_exits_non_zero_with_one_line_and_no_traceback(invoke, damaged):
    for args in (("inspect", str(damaged)), ("inspect", "--json", str(damaged))):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("peft inspect: error: "), result.stderr
        assert str(damaged) in errors[0]


@pytest.mark.parametrize("damaged", DAMAGE, indirect=True, ids=[d.__name__ for d in DAMAGE])
def test_merge_refuses_the_adapter_before_loading_the_base_model(invoke, damaged, base_dir, tmp_path, monkeypatch):
    import transformers

    def no_base(*args, **kwargs):
        raise AssertionError("the base model was loaded before the adapter was validated")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_base)
    result = invoke("merge", "--base", str(base_dir), "--adapter", str(damaged), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("peft merge: error: "), result.stderr


def test_inspect_of_a_valid_folder_still_exits_zero(invoke, lora_dir):
    result = invoke("inspect", str(lora_dir))
    assert result.exit_code == 0, result.output


def test_a_backtracking_target_regex_does_not_hang_merge(invoke, lora_dir, base_dir, tmp_path):
    folder = tmp_path / "regex"
    shutil.copytree(lora_dir, folder)
    data = json.loads((folder / CONFIG).read_text())
    data["target_modules"] = r"(\w+\.?)+!"
    (folder / CONFIG).write_text(json.dumps(data))
    path = folder / WEIGHTS
    save_file(load_file(path), path, metadata={"format": "pt"})  # a file as Hugging Face PEFT writes it
    result = invoke("merge", "--base", str(base_dir), "--adapter", str(folder), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "peft merge: error: " in result.stderr, result.output
