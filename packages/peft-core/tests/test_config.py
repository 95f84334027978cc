"""Point 3: PeftConfig and adapter_config.json (HF's form, unknown keys, bad types, refused fields)."""

from __future__ import annotations

import json
import os

import pytest

from peft_core import AdapterNotFoundError, ConfigError, PeftConfig, TaskType, UnknownPeftTypeError


def test_json_form_matches_hugging_face(toy, tmp_path):
    config = toy.ToyConfig(target_modules=["v", "q", "k"], task_type=TaskType.CAUSAL_LM)
    config.save_pretrained(tmp_path)
    text = (tmp_path / "adapter_config.json").read_text()
    data = json.loads(text)
    assert not text.endswith("\n")
    assert text == json.dumps(data, indent=2, sort_keys=True)
    assert data["peft_type"] == "TOY"
    assert data["task_type"] == "CAUSAL_LM"
    assert data["inference_mode"] is False  # written as set (PeftModel.save_pretrained writes true)
    assert data["target_modules"] == ["k", "q", "v"]  # sets written sorted, deterministic
    assert data["peft_version"].startswith("0.21.2@peft-core-")
    assert config.inference_mode is False  # saving does not change the live config


def test_round_trip_dispatches_on_peft_type(toy, tmp_path):
    config = toy.ToyConfig(target_modules=["lin0"], r=3, rank_pattern={"lin0": 1})
    config.save_pretrained(tmp_path)
    loaded = PeftConfig.from_pretrained(tmp_path)
    assert type(loaded) is toy.ToyConfig
    assert loaded.r == 3 and loaded.target_modules == {"lin0"} and loaded.rank_pattern == {"lin0": 1}
    assert toy.ToyConfig.from_pretrained(tmp_path).r == 3


def test_from_peft_type(toy):
    config = PeftConfig.from_peft_type(peft_type="TOY", r=5, target_modules=["a"])
    assert isinstance(config, toy.ToyConfig) and config.r == 5


def test_unknown_fields_are_dropped_with_a_warning_naming_them(tmp_path):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "TOY", "r": 4, "target_modules": ["a"], "brand_new_field": 1, "zz_other": None})
    )
    with pytest.warns(UserWarning, match=r"\['brand_new_field', 'zz_other'\]"):
        config = PeftConfig.from_pretrained(tmp_path)
    assert config.r == 4 and not hasattr(config, "brand_new_field")


def test_runtime_config_in_a_file_is_dropped_with_a_warning(toy, tmp_path):
    # Hugging Face PEFT's from_json_file drops it: runtime settings belong to one process, never to a saved file
    config = toy.ToyConfig(target_modules=["lin0"], r=3)
    config.save_pretrained(tmp_path)
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "runtime_config": {"ephemeral_gpu_offload": True}}))
    with pytest.warns(UserWarning, match="runtime_config"):
        data = toy.ToyConfig.from_json_file(path)
    assert data == config.to_dict()
    with pytest.warns(UserWarning, match="runtime_config"):
        assert PeftConfig.from_pretrained(tmp_path).r == 3


def test_invalid_json_is_a_clear_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "TOY", ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        PeftConfig.from_pretrained(tmp_path)


def test_non_object_json(tmp_path):
    (tmp_path / "adapter_config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        PeftConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("r", "8", "int"), ("r", True, "int"), ("init_weights", "yes", "bool"), ("target_modules", 3, "list")],
)
def test_wrong_field_type_names_field_and_type(tmp_path, field, value, expected):
    data = {"peft_type": "TOY", "target_modules": ["a"], field: value}
    (tmp_path / "adapter_config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        PeftConfig.from_pretrained(tmp_path)
    assert f"ToyConfig.{field}" in str(err.value) and expected in str(err.value)


def test_float_field_accepts_int(toy):
    from dataclasses import dataclass

    @dataclass
    class FloatConfig(toy.ToyConfig):
        dropout: float = 0.0

    assert FloatConfig.from_dict({"target_modules": ["a"], "dropout": 0}).dropout == 0


def test_not_implemented_value_is_refused(toy, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "TOY", "use_magic": True}))
    with pytest.raises(ConfigError, match="use_magic=True.*does not implement"):
        PeftConfig.from_pretrained(tmp_path)
    with pytest.raises(ConfigError):
        toy.ToyConfig(use_magic=True)


def test_invalid_task_type(toy):
    with pytest.raises(ConfigError, match="Invalid task_type 'CHAT'"):
        toy.ToyConfig(task_type="CHAT")


def test_semantic_error_from_post_init_is_a_config_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "TOY", "r": 1000}))
    with pytest.raises(ConfigError, match="r must be at most 64"):
        PeftConfig.from_pretrained(tmp_path)


def test_unknown_peft_type_says_what_is_missing_without_guessing_a_package(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "NOT_A_METHOD"}))
    with pytest.raises(UnknownPeftTypeError) as err:
        PeftConfig.from_pretrained(tmp_path)
    assert "'NOT_A_METHOD'" in str(err.value) and "peft-not-a-method" not in str(err.value)


def test_missing_peft_type(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1}))
    with pytest.raises(ConfigError, match="no 'peft_type'"):
        PeftConfig.from_pretrained(tmp_path)


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(AdapterNotFoundError, match="does not exist"):
        PeftConfig.from_pretrained(tmp_path / "nope")
    with pytest.raises(AdapterNotFoundError, match="No adapter_config.json"):
        PeftConfig.from_pretrained(tmp_path)


def test_hub_id_is_resolved_through_huggingface_hub(toy, tmp_path, monkeypatch):
    src = tmp_path / "snapshot"
    toy.ToyConfig(target_modules=["a"], r=6).save_pretrained(src)
    calls = []

    def fake_download(repo_id, filename, subfolder=None, revision=None, **kwargs):
        calls.append((repo_id, filename, subfolder, revision))
        return os.path.join(src, filename)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    config = PeftConfig.from_pretrained("someone/toy-adapter", revision="main")
    assert config.r == 6
    assert calls == [("someone/toy-adapter", "adapter_config.json", None, "main")]


def test_wrong_config_class_for_file(toy, tmp_path):
    from dataclasses import dataclass

    @dataclass
    class OtherConfig(PeftConfig):
        peft_type: str = "OTHER"

    toy.ToyConfig(target_modules=["a"]).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="is a ToyConfig"):
        OtherConfig.from_pretrained(tmp_path)
