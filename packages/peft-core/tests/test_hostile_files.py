"""An adapter folder is untrusted input: it may change only the adapter, can't hang loading, and every
problem in it is a PeftError naming the file and the field."""

from __future__ import annotations

import copy
import json
import os
import re
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from peft_core import (
    AdapterLoadError,
    AdapterNotFoundError,
    ConfigError,
    PeftConfig,
    PeftError,
    PeftModel,
    get_peft_model,
)
from peft_core import patterns
from peft_core.serialization import open_weights_file


def _save(toy, model, folder, **config):
    torch.manual_seed(0)
    peft = get_peft_model(model, toy.ToyConfig(init_weights=False, **{"target_modules": ["lin0"], **config}))
    peft.save_pretrained(folder)
    return peft


def _rewrite_weights(folder, update):
    path = os.path.join(folder, "adapter_model.safetensors")
    tensors = load_file(path)
    update(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def _write_config(folder, **changes):
    """Edit the config, and drop our record of it from the weights: a file as Hugging Face PEFT (or anyone) writes it."""
    _rewrite_weights(folder, lambda t: None)
    path = os.path.join(folder, "adapter_config.json")
    data = json.loads(open(path).read())
    data.update(changes)
    with open(path, "w") as fh:
        fh.write(json.dumps(data))


# -- a file may only touch the adapter ------------------------------------------------------------------
def test_a_file_cannot_overwrite_a_base_weight(toy, mlp, tmp_path):
    pristine = copy.deepcopy(mlp)
    _save(toy, copy.deepcopy(mlp), tmp_path)
    _rewrite_weights(tmp_path, lambda t: t.update({"base_model.model.head.weight": torch.full((3, 8), 9.0)}))
    with pytest.raises(AdapterLoadError, match=r"overwrite base-model tensors.*base_model\.model\.head\.weight"):
        PeftModel.from_pretrained(copy.deepcopy(pristine), tmp_path)
    with pytest.warns(UserWarning, match=r"base_model\.model\.head\.weight.*skipped"):
        loaded = PeftModel.from_pretrained(copy.deepcopy(pristine), tmp_path, strict=False)
    assert torch.equal(loaded.base_model.model.head.weight, pristine.head.weight)  # untouched


def test_a_file_cannot_overwrite_a_targeted_layers_base_weight(toy, mlp, tmp_path):
    """`<target>.base_layer.weight` is a base tensor too (only targeted *embeddings* may carry it)."""
    pristine = copy.deepcopy(mlp)
    _save(toy, copy.deepcopy(mlp), tmp_path)
    _rewrite_weights(tmp_path, lambda t: t.update({"base_model.model.lin0.base_layer.weight": torch.zeros(16, 8)}))
    with pytest.raises(AdapterLoadError, match=r"lin0\.base_layer\.weight"):
        PeftModel.from_pretrained(copy.deepcopy(pristine), tmp_path)


def test_modules_to_save_copies_still_load(toy, mlp, tmp_path):
    model = _save(toy, copy.deepcopy(mlp), tmp_path, modules_to_save=["head"])
    with torch.no_grad():
        model.base_model.model.head.modules_to_save["default"].weight.add_(1)
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path)
    x = torch.randn(2, 8)
    assert torch.equal(loaded(x), model(x))


def _llama_lm_head_folder(toy, tiny_llama, folder):
    """A toy adapter on the tiny Llama targeting `lm_head`, saved with its embedding base weight (HF's rule)."""
    torch.manual_seed(0)
    model = get_peft_model(copy.deepcopy(tiny_llama), toy.ToyConfig(init_weights=False, target_modules=["q_proj", "lm_head"]))
    with torch.no_grad():
        model.base_model.model.lm_head.base_layer.weight.mul_(2)  # e.g. a resized / trained output embedding
    model.save_pretrained(folder)
    assert "base_model.model.lm_head.base_layer.weight" in load_file(os.path.join(folder, "adapter_model.safetensors"))
    return model


def test_targeted_embedding_weights_load(toy, tiny_llama, tmp_path, input_ids):
    model = _llama_lm_head_folder(toy, tiny_llama, tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids).logits, model(input_ids).logits)


def test_untargeted_embedding_weights_need_load_embedding_layers(toy, tiny_llama, tmp_path, input_ids):
    torch.manual_seed(0)
    model = get_peft_model(copy.deepcopy(tiny_llama), toy.ToyConfig(init_weights=False, target_modules=["q_proj"]))
    model.save_pretrained(tmp_path)
    new_rows = torch.randn(128, 32)
    key = "base_model.model.model.embed_tokens.weight"  # what HF saves after a vocabulary resize
    _rewrite_weights(tmp_path, lambda t: t.update({key: new_rows}))
    with pytest.raises(AdapterLoadError, match=re.escape(key)):
        PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path, load_embedding_layers=True)
    assert torch.equal(loaded.get_base_model().model.embed_tokens.weight, new_rows)
    # only the embeddings: another base weight stays refused even then
    _rewrite_weights(tmp_path, lambda t: t.update({"base_model.model.model.norm.weight": torch.zeros(32)}))
    with pytest.raises(AdapterLoadError, match=r"model\.norm\.weight"):
        PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path, load_embedding_layers=True)


# -- regular expressions from a file can't hang loading -----------------------------------------------------
HANGING = r"(\w+\.?)+!"


@pytest.mark.parametrize("field", ["target_modules", "exclude_modules"])
def test_a_backtracking_regex_does_not_hang_loading(toy, tiny_llama, tmp_path, field):
    """With Python's `re`, `(\\w+\\.?)+!` takes seconds on `model.layers.0.self_attn.q_proj` and doubles with
    each character of longer names (hours on a real model): `from_pretrained` hung."""
    torch.manual_seed(0)
    get_peft_model(copy.deepcopy(tiny_llama), toy.ToyConfig(target_modules=["q_proj"])).save_pretrained(tmp_path)
    _write_config(tmp_path, **{field: HANGING})
    start = time.perf_counter()
    if field == "target_modules":
        with pytest.raises(ConfigError, match="not found in the base model"):
            PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path)
    else:
        PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path)  # excludes nothing
    assert time.perf_counter() - start < 30


def test_a_regex_running_out_of_time_is_a_config_error_naming_field_and_file(toy, tiny_llama, tmp_path, monkeypatch):
    torch.manual_seed(0)
    get_peft_model(copy.deepcopy(tiny_llama), toy.ToyConfig(target_modules=["q_proj"])).save_pretrained(tmp_path)
    _write_config(tmp_path, target_modules=r"(\w|\.)*(?<!j)q_proj")
    monkeypatch.setattr(patterns, "MATCH_TIMEOUT_S", 1e-9)  # any pattern runs out of time
    with pytest.raises(ConfigError) as err:
        PeftModel.from_pretrained(copy.deepcopy(tiny_llama), tmp_path)
    message = str(err.value)
    assert "ToyConfig.target_modules" in message and "adapter_config.json" in message and "backtracks" in message


def test_regex_matching_keeps_pythons_semantics():
    names = [
        "model.layers.0.self_attn.q_proj",
        "model.layers.11.mlp.down_proj",
        "vision_tower.encoder.layers.3.self_attn.q_proj",
        "lm_head",
        "model.embed_tokens",
        "transformer.h.0.attn.c_attn",
    ]
    regexes = [
        r".*\.(q_proj|v_proj)",
        r"^(?!.*vision).*\.(q_proj|down_proj)$",  # a lookahead, common in HF configs
        r"model\.layers\.\d+\.mlp\..*",
        r".*attn\.c_\w+",
        r"lm_head|model\.embed_tokens",
    ]
    for pattern in regexes:
        for name in names:
            assert patterns.fullmatch(pattern, name, "f") == (re.fullmatch(pattern, name) is not None), (pattern, name)
            template = r"(.*\.)?({})$"
            assert bool(patterns.match(pattern, name, "f", template)) == bool(re.match(template.replace("{}", pattern), name))
        assert patterns.fullmatch(r"(?i).*LM_HEAD", "lm_head", "f")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"target_modules": "(lin0"}, "target_modules"),
        ({"exclude_modules": "lin[0"}, "exclude_modules"),
        ({"rank_pattern": {"(lin0": 3}}, "rank_pattern"),
        ({"layers_pattern": "layers("}, "layers_pattern"),
        ({"modules_to_save": ["head)"]}, "modules_to_save"),
    ],
)
def test_an_invalid_regex_is_a_config_error_naming_field_and_file(toy, mlp, tmp_path, changes, field):
    _save(toy, copy.deepcopy(mlp), tmp_path)
    _write_config(tmp_path, **changes)
    with pytest.raises(ConfigError, match=rf"ToyConfig\.{field}.*not a valid regex") as err:
        PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path)
    assert str(tmp_path / "adapter_config.json") in str(err.value)


# -- absurd numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, field",
    [
        ('"scaling": NaN', "scaling"),
        ('"scaling": Infinity', "scaling"),
        ('"scaling": -Infinity', "scaling"),
        ('"r": 1' + "0" * 5000, "r"),
        ('"rank_pattern": {"lin0": NaN}', "rank_pattern['lin0']"),
        ('"r": 100000000000000000000000', "r"),
    ],
)
def test_non_finite_and_oversized_numbers_are_refused_naming_the_field(toy, mlp, tmp_path, raw, field):
    _save(toy, copy.deepcopy(mlp), tmp_path)
    _rewrite_weights(tmp_path, lambda t: None)
    path = tmp_path / "adapter_config.json"
    text = path.read_text()
    key = raw.split(":")[0]
    data = json.loads(text)
    data.pop(key.strip('"'), None)
    path.write_text(json.dumps(data)[:-1] + ", " + raw + "}")
    with pytest.raises(ConfigError) as err:
        PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path)
    assert f"ToyConfig.{field}" in str(err.value) and str(path) in str(err.value)


def test_a_rank_that_cannot_fit_in_memory_is_refused_before_allocating(toy, mlp, tmp_path):
    config = toy.ToyConfig(target_modules=["lin0"])
    object.__setattr__(config, "r", 10**12)  # past the method's own check, as a subclass might allow
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"r=1000000000000.*more than the .* of memory available.*before allocating"):
        get_peft_model(copy.deepcopy(mlp), config)
    assert time.perf_counter() - start < 10
    assert not any(type(m).__name__ == "ToyLinear" for m in mlp.modules())


def test_a_negative_size_is_a_config_error_not_a_torch_error(toy, mlp, tmp_path):
    _save(toy, copy.deepcopy(mlp), tmp_path)
    _write_config(tmp_path, rank_pattern={"lin0": -3})
    with pytest.raises(ConfigError, match=r"rank_pattern\['lin0'\]=-3.*negative size") as err:
        PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path)
    assert str(tmp_path / "adapter_config.json") in str(err.value)


def test_deeply_nested_json_is_a_config_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "TOY", "rank_pattern": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(ConfigError, match="too deeply"):
        PeftConfig.from_pretrained(tmp_path)


def test_a_path_that_is_a_file_says_so(toy, mlp, tmp_path):
    _save(toy, copy.deepcopy(mlp), tmp_path)
    with pytest.raises(AdapterNotFoundError, match="is a file, not an adapter folder") as err:
        PeftModel.from_pretrained(copy.deepcopy(mlp), tmp_path / "adapter_config.json")
    assert "does not exist" not in str(err.value)


# -- safetensors headers are validated by the safetensors library -------------------------------------------
def _raw_file(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


@pytest.mark.parametrize(
    "header, data",
    [
        (  # two tensors over the same bytes
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
            bytes(8),
        ),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(12)),  # trailing bytes
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),  # shape vs offsets
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)),  # negative dimension
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4)),  # truncated
    ],
)
def test_malformed_safetensors_files_are_refused(tmp_path, header, data):
    path = tmp_path / "adapter_model.safetensors"
    _raw_file(path, header, data)
    with pytest.raises(AdapterLoadError, match="not a readable safetensors file"):
        open_weights_file(str(path))


def test_every_user_error_above_is_a_peft_error():
    for cls in (AdapterLoadError, AdapterNotFoundError, ConfigError):
        assert issubclass(cls, PeftError)
