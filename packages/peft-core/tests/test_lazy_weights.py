"""Loading reads safetensors files lazily: checked against the model from the header, then read one
tensor at a time straight into the adapter's parameters (never a second copy of the adapter)."""

from __future__ import annotations

import copy

import pytest
import safetensors.torch
import torch
from core_test_models import MLP
from peft_core import PeftModel, get_peft_model, set_peft_model_state_dict
from peft_core.serialization import LazyWeights, open_weights_file
from safetensors.torch import load_file, save_file


def test_lazy_weights_equal_safetensors(tmp_path):
    tensors = {
        "f32": torch.randn(3, 4),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "f16": torch.randn(2, 2).half(),
        "i64": torch.arange(6).view(2, 3),
        "bool": torch.tensor([True, False]),
        "empty": torch.empty(0, 3),
        "scalar": torch.tensor(2.5),
    }
    path = str(tmp_path / "w.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})
    lazy = open_weights_file(path)
    assert isinstance(lazy, LazyWeights) and sorted(lazy) == sorted(tensors)
    reference = load_file(path)
    for key, value in reference.items():
        assert lazy.spec(key) == (value.dtype, tuple(value.shape))
        assert lazy[key].dtype == value.dtype and torch.equal(lazy[key], value)
    dest = torch.zeros(3, 4)
    assert lazy.read_into("f32", dest) and torch.equal(dest, tensors["f32"])
    assert not lazy.read_into("f32", torch.zeros(3, 4, dtype=torch.float64))  # dtype differs: caller converts


def _saved_toy(toy, tmp_path):
    torch.manual_seed(0)
    base = MLP()
    model = get_peft_model(copy.deepcopy(base), toy.ToyConfig(init_weights=False, target_modules=["lin0", "lin1"]))
    model.save_pretrained(tmp_path)
    return base, model


@pytest.mark.parametrize("low_cpu_mem_usage", [False, True])
def test_from_pretrained_reads_the_file_lazily(toy, tmp_path, monkeypatch, low_cpu_mem_usage):
    base, model = _saved_toy(toy, tmp_path)

    def eager(*args, **kwargs):
        raise AssertionError("the whole file was read at once")

    monkeypatch.setattr(safetensors.torch, "load_file", eager)
    read_into = []
    original = LazyWeights.read_into
    monkeypatch.setattr(LazyWeights, "read_into", lambda self, key, dest: read_into.append(key) or original(self, key, dest))
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=low_cpu_mem_usage)
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert bool(read_into) != low_cpu_mem_usage  # in place into existing parameters; assigned on meta


def test_lazy_file_without_the_peft_model_prefix_loads_into_a_peft_model(toy, tmp_path):
    base, model = _saved_toy(toy, tmp_path)
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    plain_keys = str(tmp_path / "plain.safetensors")  # as saved from a model without the PeftModel wrapper
    save_file({k.removeprefix("base_model.model."): v for k, v in saved.items()}, plain_keys)
    fresh = get_peft_model(copy.deepcopy(base), toy.ToyConfig(init_weights=True, target_modules=["lin0", "lin1"]))
    report = set_peft_model_state_dict(fresh, open_weights_file(plain_keys))
    assert not report.missing_keys and not report.unexpected_keys
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
