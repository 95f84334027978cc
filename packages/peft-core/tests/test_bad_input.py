"""Bad input never crashes obscurely or loses an adapter (issue 11).

Every case raises a documented exception type (`peft_core.errors`) whose message says what is
wrong, where, and how to fix it. Items of the issue's catalogue tested elsewhere:

- folder / `adapter_config.json` missing, invalid JSON, wrong field types, unknown `peft_type`,
  fields from a newer version: `test_config.py` (the toy method) and, for every installed
  method's real config, `test_config_fuzz.py` and `test_real_configs_*` below;
- truncated safetensors, missing / unexpected / mis-shaped keys, fp16 upcast, legacy `.bin`:
  `test_save_load.py`;
- random JSON into config loading: `test_config_fuzz.py`;
- threads registering and loading methods, PeftModels not sharing state: `test_concurrency.py`.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from peft_core import (
    AdapterLoadError,
    AdapterNameError,
    AdapterNotFoundError,
    BaseTunerLayer,
    ConfigError,
    PeftConfig,
    PeftError,
    PeftModel,
    get_peft_model,
)
from peft_core import atomic_files, serialization


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _fresh(base_state):
    from core_test_models import MLP

    torch.manual_seed(123)
    model = MLP()
    model.load_state_dict(base_state)
    return model


def _trained(toy, mlp, **kwargs):
    kwargs.setdefault("target_modules", ["lin0", "lin1"])
    return get_peft_model(mlp, toy.ToyConfig(init_weights=False, **kwargs))


def _saved(toy, mlp, tmp_path, **save_kwargs):
    """A saved adapter: (base weights, folder, input, expected output)."""
    base_state = _snapshot(mlp)
    model = _trained(toy, mlp)
    x = torch.randn(3, 8)
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(tmp_path, **save_kwargs)
    return base_state, tmp_path, x, expected


def _has_adapter_layers(model: nn.Module) -> bool:
    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def _read(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


# -- the adapter folder -----------------------------------------------------------------------------
def test_missing_folder_through_peft_model(toy, mlp, tmp_path):
    base = copy.deepcopy(mlp)
    with pytest.raises(AdapterNotFoundError) as err:
        PeftModel.from_pretrained(base, tmp_path / "no-such-adapter")
    msg = str(err.value)
    assert "no-such-adapter" in msg and "does not exist" in msg and "save_pretrained" in msg
    assert not _has_adapter_layers(base)


def test_missing_config_file_through_peft_model(toy, mlp, tmp_path):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path)
    os.remove(folder / "adapter_config.json")
    base = _fresh(base_state)
    with pytest.raises(AdapterNotFoundError, match=r"No adapter_config.json found in .*subfolder="):
        PeftModel.from_pretrained(base, folder)
    assert not _has_adapter_layers(base)


def test_newer_fields_are_dropped_with_a_warning_and_the_adapter_still_loads(toy, mlp, tmp_path):
    base_state, folder, x, expected = _saved(toy, mlp, tmp_path)
    data = json.loads((folder / "adapter_config.json").read_text())
    data["field_from_the_future"] = {"x": 1}
    (folder / "adapter_config.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"Unexpected keyword arguments \[.field_from_the_future.\] for class ToyConfig, these are ignored\. They are fields in .*adapter_config.json.*upgrade"):
        loaded = PeftModel.from_pretrained(_fresh(base_state), folder)
    assert torch.equal(loaded(x), expected)


# -- adapter_model.safetensors ------------------------------------------------------------------------
def _corrupt_header_length(raw: bytes) -> bytes:
    return (2**62).to_bytes(8, "little") + raw[8:]


def _corrupt_header_json(raw: bytes) -> bytes:
    n = int.from_bytes(raw[:8], "little")
    return raw[:8] + b"{" * n + raw[8 + n :]


def _offsets_past_the_end(raw: bytes) -> bytes:
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key]["data_offsets"][1] += 10_000
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated in the data
        lambda raw: raw[:5],  # truncated in the header length
        lambda raw: b"",  # empty file
        _corrupt_header_length,
        _corrupt_header_json,
        _offsets_past_the_end,
        lambda raw: b"PK\x03\x04" + os.urandom(64),  # a zip (torch.save) file under the safetensors name
        lambda raw: json.dumps({"not": "safetensors"}).encode(),
    ],
    ids=["truncated", "truncated-header", "empty", "header-length", "header-json", "offsets", "zip", "json"],
)
def test_damaged_safetensors_is_a_clear_load_error(toy, mlp, tmp_path, damage):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path)
    path = folder / "adapter_model.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    base = _fresh(base_state)
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(base, folder)
    msg = str(err.value)
    assert str(path) in msg and "not a readable safetensors file" in msg and "save the adapter again" in msg
    assert not _has_adapter_layers(base)


def test_unexpected_keys_alone_are_reported_not_dropped(toy, mlp, tmp_path):
    base_state, folder, x, expected = _saved(toy, mlp, tmp_path)
    path = folder / "adapter_model.safetensors"
    tensors = _read(path)
    tensors["base_model.model.lin0.toy_C.weight"] = torch.ones(2, 2)  # e.g. from a newer method version
    save_file(tensors, path)
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(_fresh(base_state), folder)
    msg = str(err.value)
    assert "unexpected keys [base_model.model.lin0.toy_C.weight]" in msg and "missing" not in msg
    assert "strict=False" in msg
    with pytest.warns(UserWarning, match=r"unexpected keys \[base_model.model.lin0.toy_C.weight\]"):
        loaded = PeftModel.from_pretrained(_fresh(base_state), folder, strict=False)
    assert torch.equal(loaded(x), expected)


def test_missing_keys_alone_are_reported(toy, mlp, tmp_path):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path)
    path = folder / "adapter_model.safetensors"
    tensors = _read(path)
    del tensors["base_model.model.lin1.toy_B.weight"]
    save_file(tensors, path)
    with pytest.raises(AdapterLoadError, match=r"missing keys \[base_model.model.lin1.toy_B.weight\] \(1 in all\)"):
        PeftModel.from_pretrained(_fresh(base_state), folder)


def test_wrong_shape_leaves_the_base_model_as_it_was(toy, mlp, tmp_path):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path)
    path = folder / "adapter_model.safetensors"
    tensors = _read(path)
    tensors["base_model.model.lin1.toy_A.weight"] = torch.zeros(2, 15)
    save_file(tensors, path)
    base = _fresh(base_state)
    flags = {n: p.requires_grad for n, p in base.named_parameters()}
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(base, folder)
    assert "base_model.model.lin1.toy_A.weight: file (2, 15) vs model (2, 16)" in str(err.value)
    assert not _has_adapter_layers(base) and "peft_config" not in base.__dict__
    assert {n: p.requires_grad for n, p in base.named_parameters()} == flags
    assert all(torch.equal(v, base_state[k]) for k, v in base.state_dict().items())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool, torch.uint8])
def test_integer_tensors_for_float_parameters_are_refused(toy, mlp, tmp_path, dtype):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path)
    path = folder / "adapter_model.safetensors"
    tensors = _read(path)
    key = "base_model.model.lin0.toy_B.weight"
    tensors[key] = (tensors[key] * 100).to(dtype)
    save_file(tensors, path)
    base = _fresh(base_state)
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(base, folder)
    msg = str(err.value)
    assert f"{key}: file {dtype} vs model torch.float32" in msg and "Save the adapter again" in msg
    assert not _has_adapter_layers(base)
    with pytest.raises(AdapterLoadError, match="wrong kind of dtype"):  # not a size problem: never skipped
        PeftModel.from_pretrained(_fresh(base_state), folder, ignore_mismatched_sizes=True, strict=False)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_precisions_are_converted(toy, mlp, tmp_path, dtype):
    base_state, folder, x, expected = _saved(toy, mlp, tmp_path)
    path = folder / "adapter_model.safetensors"
    save_file({k: v.to(dtype) for k, v in _read(path).items()}, path)
    loaded = PeftModel.from_pretrained(_fresh(base_state), folder)
    assert loaded.base_model.model.lin0.toy_A["default"].weight.dtype == torch.float32
    tolerance = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float64: 0}[dtype]
    assert torch.allclose(loaded(x), expected, atol=tolerance, rtol=tolerance)


# -- legacy adapter_model.bin -----------------------------------------------------------------------
def test_legacy_bin_is_read_with_weights_only(toy, mlp, tmp_path, monkeypatch):
    base_state, folder, x, expected = _saved(toy, mlp, tmp_path, safe_serialization=False)
    assert sorted(os.listdir(folder)) == ["README.md", "adapter_config.json", "adapter_model.bin"]
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = PeftModel.from_pretrained(_fresh(base_state), folder)
    assert calls == [True]
    assert torch.equal(loaded(x), expected)


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


@pytest.mark.parametrize("payload", ["nested", "top-level"])
def test_pickle_that_would_run_code_is_refused_and_never_runs(toy, mlp, tmp_path, payload):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path / "adapter", safe_serialization=False)
    marker = tmp_path / "code-ran"
    evil = _RunsCode(str(marker))
    torch.save({"base_model.model.lin0.toy_A.weight": evil} if payload == "nested" else evil, folder / "adapter_model.bin")
    assert _RunsCode(str(marker)).__reduce__()[0] is open  # the payload is real: plain pickle would run it
    base = _fresh(base_state)
    with pytest.raises(AdapterLoadError) as err:
        PeftModel.from_pretrained(base, folder)
    assert "Refusing to load" in str(err.value) and "adapter_model.bin" in str(err.value)
    assert "safetensors" in str(err.value)  # how to fix: convert it
    assert not marker.exists()
    assert not _has_adapter_layers(base)


def test_bin_that_is_not_a_checkpoint(toy, mlp, tmp_path):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path, safe_serialization=False)
    path = folder / "adapter_model.bin"
    path.write_bytes(path.read_bytes()[:200])  # truncated zip archive
    with pytest.raises(AdapterLoadError, match="not a readable torch checkpoint"):
        PeftModel.from_pretrained(_fresh(base_state), folder)
    torch.save([torch.zeros(1)], folder / "adapter_model.bin")  # a valid checkpoint of the wrong shape
    with pytest.raises(AdapterLoadError, match="flat dict of name -> tensor, found list"):
        PeftModel.from_pretrained(_fresh(base_state), folder)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_file_under_the_bin_name_is_refused(toy, mlp, tmp_path):
    base_state, folder, _, _ = _saved(toy, mlp, tmp_path, safe_serialization=False)
    marker = tmp_path / "ran"
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(AdapterLoadError):
        PeftModel.from_pretrained(_fresh(base_state), folder)
    assert not marker.exists()


# -- adapter names ------------------------------------------------------------------------------------
BAD_NAMES = ["", "a/b", "a\\b", "..", "../escape", "a.b", "has space", "tab\there", "nul\x00", "__base__",
             "training", "forward", "state_dict", "_modules", "_keys", "keys", "update", None, 3]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_adapter_names_are_rejected_before_anything_changes(toy, mlp, tmp_path, name):
    folder = tmp_path / "adapter"
    base_state, _, _, _ = _saved(toy, copy.deepcopy(mlp), folder)
    fresh = _fresh(base_state)
    with pytest.raises(AdapterNameError) as err:
        get_peft_model(fresh, toy.ToyConfig(target_modules=["lin0"]), adapter_name=name)
    assert "adapter name" in str(err.value).lower() and ("Use e.g." in str(err.value) or "choose another" in str(err.value))
    assert not _has_adapter_layers(fresh)
    with pytest.raises(AdapterNameError):
        PeftModel.from_pretrained(fresh, folder, adapter_name=name)
    assert not _has_adapter_layers(fresh)

    model = _trained(toy, mlp)
    before = set(model.state_dict())
    with pytest.raises(AdapterNameError):
        model.add_adapter(name, toy.ToyConfig(target_modules=["lin0"]))
    with pytest.raises(AdapterNameError):
        model.load_adapter(folder, adapter_name=name)
    assert set(model.state_dict()) == before and list(model.peft_config) == ["default"]
    assert issubclass(AdapterNameError, (ValueError, PeftError))


def test_save_refuses_a_bad_name_before_writing_anything(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    model.base_model.peft_config["../escape"] = model.peft_config["default"]  # forced in by hand
    out = tmp_path / "out"
    with pytest.raises(AdapterNameError):
        model.save_pretrained(out)
    assert os.listdir(tmp_path) == []


def test_save_never_follows_a_subfolder_link_outside_the_target(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    model.add_adapter("second", toy.ToyConfig(target_modules=["lin0"]))
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    os.symlink(outside, out / "second")
    with pytest.raises(ValueError, match="would be saved outside"):
        model.save_pretrained(out)
    assert os.listdir(outside) == [] and sorted(os.listdir(out)) == ["second"]


def test_save_into_a_file_path_is_refused(toy, mlp, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="needs a directory"):
        _trained(toy, mlp).save_pretrained(target)
    assert target.read_text() == "keep me"


# -- configs that don't fit the model ------------------------------------------------------------------
def test_config_matching_no_module(toy, mlp):
    base = copy.deepcopy(mlp)
    with pytest.raises(ConfigError) as err:
        get_peft_model(base, toy.ToyConfig(target_modules=["q_proj"]))
    msg = str(err.value)
    assert "Target modules {'q_proj'} not found in the base model (MLP)" in msg and "'lin0'" in msg
    assert not _has_adapter_layers(base)


@pytest.mark.parametrize("r", [0, -1, -100])
def test_ranks_below_one_are_refused(toy, r, tmp_path):
    with pytest.raises(ConfigError, match=rf"ToyConfig.r must be a positive integer \(the rank\), got {r}"):
        toy.ToyConfig(target_modules=["lin0"], r=r)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "TOY", "r": r}))
    with pytest.raises(ConfigError, match=rf"ToyConfig.r must be .* \(in {tmp_path}"):
        PeftConfig.from_pretrained(tmp_path)


def test_dropout_outside_zero_one_is_refused(toy):
    from dataclasses import dataclass

    @dataclass
    class DropConfig(toy.ToyConfig):
        toy_dropout: float = 0.0
        maybe_dropout: float | None = None

    DropConfig(toy_dropout=0.0, maybe_dropout=0.999)
    for field in ("toy_dropout", "maybe_dropout"):
        for bad in (1, 1.0, 1.5, -0.1, float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=rf"DropConfig.{field} must be a probability in \[0, 1\)"):
                DropConfig(**{field: bad})


def test_a_zero_rank_sentinel_default_still_refuses_negatives(toy):
    from dataclasses import dataclass

    @dataclass
    class BlockConfig(toy.ToyConfig):  # like OFT: r=0 means "size by blocks instead"
        r: int = 0

    assert BlockConfig(target_modules=["lin0"]).r == 0
    with pytest.raises(ConfigError, match="must be a non-negative integer"):
        BlockConfig(r=-1)


def test_layers_to_transform_beyond_the_model_names_the_range(toy, tiny_llama):
    with pytest.raises(ConfigError) as err:
        get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=[1, 5]))
    msg = str(err.value)
    assert "layers_to_transform=[1, 5]" in msg and "[5]" in msg and "numbered 0..1" in msg
    assert not _has_adapter_layers(tiny_llama)
    with pytest.raises(ConfigError, match=r"layer indices \[2\].*layers_pattern='layers'.*numbered 0..1"):
        get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=2, layers_pattern="layers"))
    with pytest.raises(ConfigError, match=r"layer indices \[-1\]"):
        get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=[-1]))
    model = get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=[1]))
    adapted = [n for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    assert adapted == ["base_model.model.model.layers.1.self_attn.q_proj"]


def test_layers_pattern_that_matches_nothing_is_the_nothing_matched_error(toy, tiny_llama):
    with pytest.raises(ConfigError, match=r"not found in the base model.*layers_to_transform=\[0\] and layers_pattern='blocks'|"
                                          r"with layers_to_transform=\[0\] and layers_pattern='blocks' not found"):
        get_peft_model(tiny_llama, toy.ToyConfig(target_modules=["q_proj"], layers_to_transform=[0], layers_pattern="blocks"))


def test_unsupported_target_part_way_leaves_the_model_untouched(toy, mlp):
    base = copy.deepcopy(mlp)
    base.add_module("zz_norm", nn.LayerNorm(3))  # matched after lin0/lin1 were already replaced
    with pytest.raises(ValueError, match="not supported by toy"):
        get_peft_model(base, toy.ToyConfig(target_modules=["lin0", "lin1", "zz_norm"]))
    assert not _has_adapter_layers(base) and "peft_config" not in base.__dict__
    assert all(p.requires_grad for p in base.parameters())


# -- nothing lost when a save fails part-way -------------------------------------------------------------
def _fail_writes_of(monkeypatch, filename: str, after: int = 0):
    """Make the `after`+1-th staged write of `filename` write half its bytes, then fail."""
    real = atomic_files.write_temp
    seen = []

    def failing(path, write):
        if os.path.basename(path) == filename:
            seen.append(path)
            if len(seen) > after:

                def half(tmp):
                    write(tmp)
                    with open(tmp, "r+b") as fh:
                        fh.truncate(os.path.getsize(tmp) // 2)
                    raise OSError(28, "No space left on device")

                return real(path, half)
        return real(path, write)

    monkeypatch.setattr(atomic_files, "write_temp", failing)


def test_failed_config_write_keeps_the_previous_adapter(toy, mlp, tmp_path, monkeypatch):
    base_state, folder, x, expected = _saved(toy, mlp, tmp_path)
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    model = _trained(toy, _fresh(base_state), r=3)  # a different rank: new weights would not fit the old config
    _fail_writes_of(monkeypatch, "adapter_config.json")
    with pytest.raises(OSError, match="No space left"):
        model.save_pretrained(folder)
    monkeypatch.undo()
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before  # no temp files, nothing replaced
    assert torch.equal(PeftModel.from_pretrained(_fresh(base_state), folder)(x), expected)


def test_failed_multi_adapter_save_keeps_every_previous_adapter(toy, mlp, tmp_path, monkeypatch):
    base_state = _snapshot(mlp)
    model = _trained(toy, mlp)
    model.add_adapter("second", toy.ToyConfig(target_modules=["lin1"], init_weights=False))
    x = torch.randn(3, 8)
    with torch.no_grad():
        expected = {"default": model(x)}
        model.set_adapter("second")
        expected["second"] = model(x)
    model.save_pretrained(tmp_path)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".toy_" in name:
                p.add_(1)
    _fail_writes_of(monkeypatch, "adapter_model.safetensors", after=1)  # the second adapter's weights
    with pytest.raises(OSError, match="No space left"):
        model.save_pretrained(tmp_path)
    monkeypatch.undo()
    leftovers = [n for _, _, files in os.walk(tmp_path) for n in files if n.endswith(".tmp")]
    assert leftovers == []
    loaded = PeftModel.from_pretrained(_fresh(base_state), tmp_path)
    loaded.load_adapter(tmp_path / "second", "second")
    assert torch.equal(loaded(x), expected["default"])
    loaded.set_adapter("second")
    assert torch.equal(loaded(x), expected["second"])


def test_failed_first_save_leaves_no_half_folders(toy, mlp, tmp_path, monkeypatch):
    model = _trained(toy, mlp)
    model.add_adapter("second", toy.ToyConfig(target_modules=["lin1"]))
    _fail_writes_of(monkeypatch, "README.md")  # the very last file
    with pytest.raises(OSError):
        model.save_pretrained(tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_saving_bin_over_safetensors_removes_the_stale_file(toy, mlp, tmp_path):
    base_state, folder, x, _ = _saved(toy, mlp, tmp_path)
    model = _trained(toy, _fresh(base_state))
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(folder, safe_serialization=False)
    # Loading prefers safetensors: a stale one left behind would silently win over the new .bin.
    assert sorted(os.listdir(folder)) == ["README.md", "adapter_config.json", "adapter_model.bin"]
    assert torch.equal(PeftModel.from_pretrained(_fresh(base_state), folder)(x), expected)


def test_non_main_process_writes_nothing(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    model.save_pretrained(tmp_path / "out", is_main_process=False)
    assert os.listdir(tmp_path) == []



# -- the same rules for every installed method's real config -----------------------------------------------
def _installed():
    from core_method_examples import installed_method_packages

    return sorted(installed_method_packages())


def _real_document(method: str) -> tuple[type, dict]:
    """A method's config class and the JSON its default config saves."""
    import peft_core
    from core_method_examples import OVERRIDES

    config_cls = peft_core.get_peft_method(method).config_cls
    kwargs = {k: v for k, v in OVERRIDES.get(method, {}).items() if k == "total_step"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return config_cls, json.loads(config_cls(**kwargs).to_json_string())


def _load_document(tmp_path, doc):
    (tmp_path / "adapter_config.json").write_text(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PeftConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("method", _installed())
def test_real_configs_refuse_bad_ranks_dropouts_and_types(method, tmp_path):
    import dataclasses
    import typing

    from peft_core.config import _type_hints

    config_cls, doc = _real_document(method)
    assert type(_load_document(tmp_path, doc)) is config_cls  # the default document loads
    hints = _type_hints(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    bad: list[tuple[str, object, str]] = []
    if hints.get("r") is int:
        zero_ok = fields["r"].default == 0
        bad += [("r", -1, "r must be")] + ([] if zero_ok else [("r", 0, "r must be a positive integer")])
    for name, tp in hints.items():
        if name.endswith("dropout") and (tp is float or float in typing.get_args(tp)):
            bad += [(name, 1.0, rf"{name} must be a probability in \[0, 1\)"), (name, -0.1, name)]
    ints = [n for n, tp in hints.items() if tp is int and n in fields]
    if ints:
        bad.append((ints[0], "8", rf"{config_cls.__name__}.{ints[0]} .*wrong type: expected int"))
    for field, value, match in bad:
        with pytest.raises(ConfigError, match=match) as err:
            _load_document(tmp_path, {**doc, field: value})
        assert str(tmp_path / "adapter_config.json") in str(err.value), (field, str(err.value))  # where


@pytest.mark.parametrize("method", _installed())
def test_real_configs_warn_about_fields_from_a_newer_version(method, tmp_path):
    config_cls, doc = _real_document(method)
    (tmp_path / "adapter_config.json").write_text(json.dumps({**doc, "use_future_trick": True}))
    with pytest.warns(UserWarning, match=rf"Unexpected keyword arguments \[.use_future_trick.\] for class {config_cls.__name__}, these are ignored"):
        assert type(PeftConfig.from_pretrained(tmp_path)) is config_cls


# -- saving from several processes ---------------------------------------------------------------------
def test_save_takes_values_from_a_given_state_dict(toy, mlp, tmp_path):
    base_state = _snapshot(mlp)
    model = _trained(toy, mlp)
    x = torch.randn(3, 8)
    gathered = {k: v.clone() for k, v in model.state_dict().items()}  # e.g. gathered from FSDP shards
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".toy_" in name:
                gathered[name] += 0.5
        model.load_state_dict(gathered)
        expected = model(x)
        for name, param in model.named_parameters():
            if ".toy_" in name:
                param.zero_()  # the live tensors differ from the given state
    model.save_pretrained(tmp_path, state_dict=gathered)
    assert torch.equal(PeftModel.from_pretrained(_fresh(base_state), tmp_path)(x), expected)


def test_a_state_dict_lacking_adapter_tensors_is_refused(toy, mlp, tmp_path):
    model = _trained(toy, mlp)
    partial = dict(model.state_dict())
    del partial["base_model.model.lin1.toy_B.default.weight"]
    with pytest.raises(ValueError, match=r"lacks 1 of its tensors \(\[base_model.model.lin1.toy_B.default.weight\]"):
        model.save_pretrained(tmp_path / "out", state_dict=partial)
    assert os.listdir(tmp_path) == []


def test_sharded_tensors_are_refused_with_instructions(toy, mlp, tmp_path):
    class DTensor(torch.Tensor):  # stands in for torch.distributed.tensor.DTensor (FSDP2 shards)
        pass

    model = _trained(toy, mlp)
    layer = model.base_model.model.lin0
    layer.toy_A["default"].weight = nn.Parameter(layer.toy_A["default"].weight.detach().as_subclass(DTensor))
    with pytest.raises(ValueError) as err:
        model.save_pretrained(tmp_path / "out")
    msg = str(err.value)
    assert "base_model.model.lin0.toy_A.weight is a sharded DTensor" in msg
    assert "get_model_state_dict" in msg and "state_dict=state" in msg and "is_main_process" in msg
    assert os.listdir(tmp_path) == []
