"""transformers' own adapter methods (`PeftAdapterMixin`) with peft-compat as `peft`.

They need a transformers that accepts Hugging Face PEFT's 0.21.2 API level (5.24 demands >= 0.22.0,
see test_transformers_version_gate.py); the workspace runs this file in an environment with
transformers 5.23 (tests/test_peft_compat_package.py). `add_adapter`, `set_adapter`,
`disable_adapters` / `enable_adapters`, `active_adapters`, `get_adapter_state_dict`, `save_pretrained`,
`load_adapter` of our files and of files Hugging Face PEFT saved, `delete_adapter`.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file

from compat_helpers import TESTS, run_python
from compat_models import tiny_llama
from peft import LoraConfig, PeftModel, get_peft_model


def _logits(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_add_set_disable_enable_state_dict_save_and_load(tmp_path):
    ids = torch.randint(0, 128, (2, 7), generator=torch.Generator().manual_seed(1))
    model = tiny_llama()
    base_logits = _logits(model, ids)
    torch.manual_seed(3)
    model.add_adapter(LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    assert model.active_adapters() == ["default"]
    first = _logits(model, ids)
    assert not torch.equal(first, base_logits)

    model.add_adapter(LoraConfig(r=2, target_modules=["k_proj"], init_lora_weights=False), adapter_name="second")
    assert model.active_adapters() == ["second"]  # transformers activates the adapter it adds
    second = _logits(model, ids)
    model.set_adapter("default")
    assert model.active_adapters() == ["default"] and torch.equal(_logits(model, ids), first)

    model.disable_adapters()
    assert torch.equal(_logits(model, ids), base_logits)
    model.enable_adapters()
    assert torch.equal(_logits(model, ids), first)

    state = model.get_adapter_state_dict()
    assert state and all(".lora_" in k and ".default" not in k for k in state), sorted(state)[:3]
    assert sorted(model.get_adapter_state_dict("second")) == sorted(
        k for k in model.get_adapter_state_dict("second") if "k_proj" in k
    )

    model.save_pretrained(tmp_path / "saved")  # transformers saves the active adapter only, nothing of the base
    model.set_adapter("second")
    model.save_pretrained(tmp_path / "saved_second")
    files = set(os.listdir(tmp_path / "saved"))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files and "model.safetensors" not in files
    saved = load_file(tmp_path / "saved" / "adapter_model.safetensors")
    # the file has PeftModel's keys (transformers adds `base_model.model.`), so PeftModel loads it too
    assert saved.keys() == {f"base_model.model.{k}" for k in state}
    assert all(torch.equal(saved[f"base_model.model.{k}"], v) for k, v in state.items())

    fresh = tiny_llama()
    fresh.load_adapter(str(tmp_path / "saved"))
    assert fresh.active_adapters() == ["default"] and torch.equal(_logits(fresh, ids), first)
    fresh.load_adapter(str(tmp_path / "saved_second"), adapter_name="second")
    fresh.set_adapter("second")
    assert torch.equal(_logits(fresh, ids), second)
    fresh.delete_adapter("second")
    assert list(fresh.peft_config) == ["default"]

    # the files load with PeftModel too (same format either way)
    wrapped = PeftModel.from_pretrained(tiny_llama(), tmp_path / "saved")
    assert torch.equal(_logits(wrapped, ids), first)


def test_load_adapter_saved_by_hugging_face_peft(hf_python, tmp_path):
    run_python(hf_python, TESTS / "_support" / "hf_save_lora.py", str(tmp_path), cwd=tmp_path)
    reference = torch.load(tmp_path / "reference.pt")
    model = tiny_llama()
    model.load_adapter(str(tmp_path / "adapter"), adapter_name="hf")
    assert model.active_adapters() == ["hf"]
    assert torch.equal(_logits(model, reference["ids"]), reference["logits"])


def test_add_adapter_matches_get_peft_model(tmp_path):
    ids = torch.randint(0, 128, (2, 5), generator=torch.Generator().manual_seed(2))
    config = dict(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    in_place = tiny_llama()
    torch.manual_seed(4)
    in_place.add_adapter(LoraConfig(**config))
    base = tiny_llama()
    torch.manual_seed(4)
    wrapped = get_peft_model(base, LoraConfig(**config))
    assert torch.equal(_logits(in_place, ids), _logits(wrapped, ids))
