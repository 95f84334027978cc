"""Tuner-owned per-adapter state (`tuners.tuner_state`) and the `postprocess_saved_state` hook."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from peft_core import PeftModel, get_peft_model
from peft_core.tuners.tuner_state import TunerModuleDict, TunerParameterDict


@pytest.mark.parametrize("kind", ["parameters", "modules"])
def test_tuner_state_speaks_the_adapter_protocol(kind):
    if kind == "parameters":
        store = TunerParameterDict()
        store["a"] = nn.Parameter(torch.ones(2, dtype=torch.bfloat16))
        store["b"] = nn.Parameter(torch.zeros(3))
    else:
        store = TunerModuleDict()
        store["a"] = nn.Linear(2, 2, dtype=torch.bfloat16)
        store["b"] = nn.Linear(3, 1)
    assert store.has_adapter("a") and not store.has_adapter("c")
    store.set_adapter("b")
    assert all(not p.requires_grad for p in store.adapter_parameters("a"))
    assert all(p.requires_grad for p in store.adapter_parameters("b"))
    store.set_adapter(["a", "b"], inference_mode=True)
    assert not any(p.requires_grad for p in store.parameters())
    store.cast_adapter_dtype("a", autocast=False)
    assert all(p.dtype == torch.bfloat16 for p in store.adapter_parameters("a"))
    store.cast_adapter_dtype("a")
    assert all(p.dtype == torch.float32 for p in store.adapter_parameters("a"))
    store.enable_adapters(False)
    assert store.disable_adapters
    tensors = store.adapter_tensors("b", "shared")
    if kind == "parameters":
        assert [(t.saved_key, t.model_key) for t in tensors] == [("shared", "shared.b")]
    else:
        assert [(t.saved_key, t.model_key) for t in tensors] == [("shared.weight", "shared.b.weight"), ("shared.bias", "shared.b.bias")]
    store.delete_adapter("b")
    store.delete_adapter("missing")  # nothing to do
    assert list(store.keys()) == ["a"] and store.adapter_tensors("b", "shared") == []


def test_postprocess_saved_state_writes_the_file_form_and_remap_reads_it(toy, mlp, tmp_path, monkeypatch):
    """A method's compact file form: what the hook returns is what is saved; loading goes through
    remap_state_dict_for_load, which must undo it."""

    def compact(self, adapter_name, state):
        return {k.replace("toy_scale", "toy_scale_packed"): v for k, v in state.items()}

    def expand(self, adapter_name, state):
        return {k.replace("toy_scale_packed", "toy_scale"): v for k, v in state.items()}

    monkeypatch.setattr(toy.ToyModel, "postprocess_saved_state", compact)
    monkeypatch.setattr(toy.ToyModel, "remap_state_dict_for_load", expand)
    import copy

    model = get_peft_model(copy.deepcopy(mlp), toy.ToyConfig(target_modules=["lin0"], init_weights=False)).eval()
    x = torch.randn(3, 8)
    model.save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "adapter_model.safetensors"))
    assert any(k.endswith("toy_scale_packed") for k in keys) and not any(k.endswith("toy_scale") for k in keys)
    loaded = PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
