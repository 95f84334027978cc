"""Point 6: save/load in Hugging Face PEFT's layout, structural key selection, loud key errors."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from peft_core import (
    AdapterLoadError,
    AdapterNotFoundError,
    PeftConfig,
    PeftModel,
    get_peft_model,
    get_peft_model_state_dict,
    inject_adapter_in_model,
    set_peft_model_state_dict,
)


def _trained(toy, mlp, **kwargs):
    config = toy.ToyConfig(target_modules=["lin0", "lin1"], init_weights=False, **kwargs)
    return get_peft_model(mlp, config)


def _fresh(mlp_factory, base_state=None):
    """A new base model built under another RNG state, optionally given the original base weights."""
    torch.manual_seed(123)
    model = mlp_factory()
    if base_state is not None:
        model.load_state_dict(base_state)
    return model


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _saved_trained(toy, mlp, folder, rows, **save_kwargs):
    """(the base's state before adapting, a trained adapter saved to `folder`, inputs of `rows` rows, its output)."""
    base_state = _snapshot(mlp)
    model = _trained(toy, mlp)
    x = torch.randn(rows, 8)
    expected = model(x)
    model.save_pretrained(folder, **save_kwargs)
    return base_state, model, x, expected


def test_layout_keys_and_round_trip(toy, mlp, tmp_path):
    from core_test_models import MLP

    base_state, model, x, expected = _saved_trained(toy, mlp, tmp_path, rows=4)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    with safe_open(tmp_path / "adapter_model.safetensors", "pt") as f:
        keys = set(f.keys())
        metadata = f.metadata()
    assert metadata["format"] == "pt"  # Hugging Face PEFT's entry; ours records the config (config_binding)
    assert json.loads(metadata["peft_core.adapter_config"])["peft_type"] == "TOY"
    assert keys == {
        f"base_model.model.{m}.{k}" for m in ("lin0", "lin1") for k in ("toy_A.weight", "toy_B.weight", "toy_scale")
    }
    loaded = PeftModel.from_pretrained(_fresh(MLP, base_state), tmp_path)
    assert torch.equal(loaded(x), expected)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())


def test_modules_named_after_other_prefixes_are_never_saved(toy, mlp, tmp_path):
    # The MLP has a module called `lora_proj`; only the toy adapter's tensors are saved.
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], init_weights=False))
    state = get_peft_model_state_dict(model)
    assert sorted(state) == [
        "base_model.model.lin0.toy_A.weight",
        "base_model.model.lin0.toy_B.weight",
        "base_model.model.lin0.toy_scale",
    ]
    # ...even when a base module's name contains this method's own prefix.
    model.base_model.model.add_module("toy_proj", torch.nn.Linear(2, 2))
    assert "base_model.model.toy_proj.weight" not in get_peft_model_state_dict(model)


def test_is_trainable(toy, mlp, tmp_path):
    from core_test_models import MLP

    _trained(toy, mlp).save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(_fresh(MLP), tmp_path, is_trainable=True)
    trainable = {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert trainable and all(".toy_" in n for n in trainable)
    assert loaded.peft_config["default"].inference_mode is False


def test_several_adapters_in_subfolders(toy, mlp, tmp_path):
    from core_test_models import MLP

    base_state = _snapshot(mlp)
    model = _trained(toy, mlp)
    model.add_adapter("second", toy.ToyConfig(target_modules=["lin1"], init_weights=False, modules_to_save=["head"]))
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "adapter_config.json", "adapter_model.safetensors", "second"]
    assert sorted(os.listdir(tmp_path / "second")) == ["adapter_config.json", "adapter_model.safetensors"]
    with safe_open(tmp_path / "second" / "adapter_model.safetensors", "pt") as f:
        assert "base_model.model.head.weight" in f.keys()  # modules_to_save copy under the original path
    x = torch.randn(3, 8)
    model.set_adapter("second")
    expected_second = model(x)
    loaded = PeftModel.from_pretrained(_fresh(MLP, base_state), tmp_path)
    loaded.load_adapter(tmp_path / "second", "second")
    assert loaded.active_adapter == "default"  # load_adapter does not activate
    loaded.set_adapter("second")
    assert torch.allclose(loaded(x), expected_second)
    keys = set(loaded.state_dict())
    assert "base_model.model.head.modules_to_save.second.weight" in keys
    assert "base_model.model.head.original_module.weight" in keys


def test_only_adapter_named_foo_goes_to_a_subfolder(toy, mlp, tmp_path):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]), adapter_name="foo")
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "foo"]
    assert PeftModel.from_pretrained(_fresh(type(mlp)), tmp_path, subfolder="foo", adapter_name="foo").active_adapter == "foo"


def test_selected_adapters(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    model.add_adapter("b", toy.ToyConfig(target_modules=["lin0"]))
    model.save_pretrained(tmp_path, selected_adapters=["b"])
    assert sorted(os.listdir(tmp_path)) == ["README.md", "b"]
    with pytest.raises(ValueError, match="do not exist"):
        model.save_pretrained(tmp_path, selected_adapters=["zzz"])


def test_auto_mapping_only_without_task_type(toy, mlp, tmp_path):
    _trained(toy, mlp).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    assert data["auto_mapping"] == {"base_model_class": "MLP", "parent_library": "core_test_models"}


def test_missing_and_unexpected_keys_are_loud(toy, mlp, tmp_path):
    from core_test_models import MLP

    _trained(toy, mlp).save_pretrained(tmp_path)
    path = tmp_path / "adapter_model.safetensors"
    with safe_open(path, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    renamed = {k.replace("toy_A", "toy_a"): v for k, v in tensors.items()}  # misnamed keys
    save_file(renamed, path)
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(_fresh(MLP), tmp_path)
    msg = str(err.value)
    assert "missing keys" in msg and "unexpected keys" in msg and "toy_a.weight" in msg and "strict=False" in msg
    with pytest.warns(UserWarning, match="does not fit"):
        PeftModel.from_pretrained(_fresh(MLP), tmp_path, strict=False)


def test_wrong_shape_names_key_and_both_shapes(toy, mlp, tmp_path):
    from core_test_models import MLP

    _trained(toy, mlp).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    config["r"] = 3
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    edited = PeftConfig.from_pretrained(tmp_path)  # passed explicitly: the edit is on purpose
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(_fresh(MLP), tmp_path, config=edited)
    assert "lin0.toy_A.weight: file (2, 8) vs model (3, 8)" in str(err.value)
    with pytest.warns(UserWarning, match="skipped"):
        PeftModel.from_pretrained(_fresh(MLP), tmp_path, config=edited, ignore_mismatched_sizes=True)


def test_failed_load_adapter_leaves_no_half_adapter(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    model.save_pretrained(tmp_path)
    (tmp_path / "adapter_model.safetensors").write_bytes(b"garbage")
    before = set(model.state_dict())
    with pytest.raises(AdapterLoadError, match="not a readable safetensors file"):
        model.load_adapter(tmp_path, "again")
    assert set(model.state_dict()) == before and "again" not in model.peft_config


def test_truncated_safetensors(toy, mlp, tmp_path):
    from core_test_models import MLP

    _trained(toy, mlp).save_pretrained(tmp_path)
    path = tmp_path / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(AdapterLoadError, match="truncated or corrupted"):
        PeftModel.from_pretrained(_fresh(MLP), tmp_path)


def test_missing_weights_file(toy, mlp, tmp_path):
    from core_test_models import MLP

    _trained(toy, mlp).save_pretrained(tmp_path)
    os.remove(tmp_path / "adapter_model.safetensors")
    with pytest.raises(AdapterNotFoundError, match="No adapter_model.safetensors or adapter_model.bin"):
        PeftModel.from_pretrained(_fresh(MLP), tmp_path)


def test_legacy_bin_loads_with_weights_only(toy, mlp, tmp_path):
    from core_test_models import MLP

    base_state, model, x, expected = _saved_trained(toy, mlp, tmp_path, rows=2, safe_serialization=False)
    assert (tmp_path / "adapter_model.bin").exists()
    fresh = _fresh(MLP, base_state)
    assert torch.allclose(PeftModel.from_pretrained(fresh, tmp_path)(x), expected)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_runs_code_is_refused(toy, mlp, tmp_path):
    from core_test_models import MLP

    _trained(toy, mlp).save_pretrained(tmp_path, safe_serialization=False)
    torch.save({"x": _Evil()}, tmp_path / "adapter_model.bin")
    with pytest.raises(AdapterLoadError, match="Refusing to load"):
        PeftModel.from_pretrained(_fresh(MLP), tmp_path)


def test_plain_model_injection_and_prefixless_state_dict(toy, mlp):
    model = inject_adapter_in_model(toy.ToyConfig(target_modules=["lin0"], init_weights=False), mlp)
    assert type(model.lin0).__name__ == "ToyLinear"
    state = get_peft_model_state_dict(model)
    assert sorted(state) == ["lin0.toy_A.weight", "lin0.toy_B.weight", "lin0.toy_scale"]


def test_prefixless_file_loads_into_peft_model(toy, mlp):
    import copy

    model = _trained(toy, copy.deepcopy(mlp))
    state = {k.removeprefix("base_model.model."): v for k, v in get_peft_model_state_dict(model).items()}
    target = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0", "lin1"]))
    set_peft_model_state_dict(target, state)
    x = torch.randn(2, 8)
    assert torch.equal(target(x), model(x))


def test_save_is_atomic_a_crash_keeps_the_previous_adapter(toy, mlp, tmp_path, monkeypatch):
    from core_test_models import MLP

    base_state, model, x, expected = _saved_trained(toy, mlp, tmp_path, rows=2)
    with torch.no_grad():
        model.base_model.model.lin0.toy_B["default"].weight.add_(1)

    import safetensors.torch

    real = safetensors.torch.save_file

    def failing_save(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(10)
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save)
    with pytest.raises(OSError, match="No space"):
        model.save_pretrained(tmp_path)
    monkeypatch.undo()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    fresh = _fresh(MLP, base_state)
    assert torch.equal(PeftModel.from_pretrained(fresh, tmp_path)(x), expected)


def test_save_never_writes_outside_the_folder(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    with pytest.raises(ValueError):
        model.add_adapter("../escape", toy.ToyConfig(target_modules=["lin0"]))
    model.save_pretrained(tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_low_cpu_mem_usage_load(toy, mlp, tmp_path):
    from core_test_models import MLP

    base_state, model, x, expected = _saved_trained(toy, mlp, tmp_path, rows=2)
    fresh = _fresh(MLP, base_state)
    loaded = PeftModel.from_pretrained(fresh, tmp_path, low_cpu_mem_usage=True)
    assert not any(p.is_meta for p in loaded.parameters())
    assert torch.equal(loaded(x), expected)


def test_fp16_file_is_upcast_on_load(toy, mlp, tmp_path):
    from core_test_models import MLP

    model = _trained(toy, mlp)
    model.save_pretrained(tmp_path)
    path = tmp_path / "adapter_model.safetensors"
    with safe_open(path, "pt") as f:
        tensors = {k: f.get_tensor(k).half() for k in f.keys()}
    save_file(tensors, path)
    loaded = PeftModel.from_pretrained(_fresh(MLP), tmp_path)
    assert loaded.base_model.model.lin0.toy_A["default"].weight.dtype == torch.float32


def test_tuner_can_own_its_saved_state(toy, mlp, tmp_path):
    """Methods whose file is not a copy of their parameters (prompt learning) use the state hooks."""
    model = _trained(toy, mlp)
    tuner = model.base_model
    calls = []

    def save_hook(adapter_name):
        return {"prompt_embeddings": tuner.model.lin0.toy_scale[adapter_name].detach() * 2}

    def load_hook(adapter_name, state, strict):
        calls.append(sorted(state))
        with torch.no_grad():
            tuner.model.lin0.toy_scale[adapter_name].copy_(state["prompt_embeddings"] / 2)
        return True

    tuner.adapter_state_dict = save_hook
    tuner.load_adapter_state_dict = load_hook
    assert sorted(get_peft_model_state_dict(model)) == ["prompt_embeddings"]
    expected = model.base_model.model.lin0.toy_scale["default"].detach().clone()
    state = get_peft_model_state_dict(model)
    with torch.no_grad():
        model.base_model.model.lin0.toy_scale["default"].zero_()
    set_peft_model_state_dict(model, state)
    assert calls == [["prompt_embeddings"]]
    assert torch.equal(model.base_model.model.lin0.toy_scale["default"], expected)
