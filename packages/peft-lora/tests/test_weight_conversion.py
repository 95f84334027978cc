"""PiSSA / OLoRA adapters saved as plain LoRA for the original base
(`save_pretrained(path_initial_model_for_weight_conversion=...)`).

The workflow of Hugging Face PEFT's docs in both libraries: initialise (the base keeps the residual),
save the initial adapter, train (here: perturb the factors), save with conversion. The converted
adapter, applied to the ORIGINAL base, must reproduce the trained model, give bit-identical outputs
in both libraries, and equal Hugging Face PEFT's converted files.
"""

from __future__ import annotations

import copy
import json
import math

import peft_core
import peft_lora
import pytest
import torch
from _hf_compat import config_json, hf_peft, tensors
from _lora_test_models import emb_mlp, input_ids, logits, tiny_gpt2, tiny_llama
from peft_core.errors import AdapterLoadError, ConfigError
from safetensors.torch import load_file


def _train_and_convert(lib, base, tmp_path, **config):
    """Init -> save initial -> 'train' -> save converted; returns (trained outputs, converted dir)."""
    torch.manual_seed(0)
    if lib == "hf":
        peft = hf_peft()
        model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**config))
    else:
        model = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(**config))
    init = config["init_lora_weights"]
    model.peft_config["default"].init_lora_weights = True  # the docs' recipe: the initial adapter as plain LoRA
    model.save_pretrained(tmp_path / f"{lib}-init")
    model.peft_config["default"].init_lora_weights = init
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_" in name:
                param.add_(torch.randn(param.shape, generator=g) * 0.05)
    trained = logits(model, input_ids())
    model.save_pretrained(tmp_path / f"{lib}-ft", path_initial_model_for_weight_conversion=tmp_path / f"{lib}-init")
    return trained, tmp_path / f"{lib}-ft"


@pytest.mark.compat
@pytest.mark.parametrize(
    "make, config",
    [
        (tiny_llama, dict(init_lora_weights="pissa", target_modules=["q_proj", "v_proj"])),
        (tiny_llama, dict(init_lora_weights="olora", target_modules=["q_proj", "down_proj"])),
        (tiny_llama, dict(init_lora_weights="pissa_niter_4", target_modules=["k_proj"], rank_pattern={"k_proj": 2})),
        (tiny_llama, dict(init_lora_weights="pissa", use_rslora=True, target_modules=["o_proj"])),
        (tiny_gpt2, dict(init_lora_weights="pissa", target_modules=["c_attn", "c_proj"])),
    ],
    ids=["pissa", "olora", "pissa-niter-rank-pattern", "pissa-rslora", "gpt2-conv1d"],
)
def test_converted_adapter_applies_to_the_original_base_like_hf(tmp_path, make, config):
    peft = hf_peft()
    config = dict(r=4, lora_alpha=8, **config)
    base = make()
    for lib in ("hf", "ours"):
        trained, converted = _train_and_convert(lib, base, tmp_path, **config)
        assert not torch.allclose(trained, logits(base, input_ids()), atol=1e-3)
        ours = peft_core.PeftModel.from_pretrained(make(), converted)  # the ORIGINAL base weights
        theirs = peft.PeftModel.from_pretrained(make(), converted)
        assert torch.equal(logits(ours, input_ids()), logits(theirs, input_ids()))
        torch.testing.assert_close(logits(ours, input_ids()), trained, atol=2e-5, rtol=1e-4)
    assert config_json(tmp_path / "ours-ft") == config_json(tmp_path / "hf-ft")
    assert tensors(tmp_path / "ours-ft") == tensors(tmp_path / "hf-ft")
    saved = config_json(tmp_path / "ours-ft")
    assert saved["r"] == 8 and saved["init_lora_weights"] is True
    assert saved["lora_alpha"] == (8 * math.sqrt(2) if config.get("use_rslora") else 16)
    if "rank_pattern" in config:
        assert saved["rank_pattern"] == {"k_proj": 4}


def test_layout_of_the_converted_factors_and_the_initial_folder_is_left_alone(tmp_path):
    base = tiny_llama()
    _, converted = _train_and_convert("ours", base, tmp_path, r=4, init_lora_weights="pissa", target_modules=["q_proj"])
    init_config = (tmp_path / "ours-init" / "adapter_config.json").read_text()
    initial = load_file(tmp_path / "ours-init" / "adapter_model.safetensors")
    final = load_file(converted / "adapter_model.safetensors")
    key_a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    key_b = key_a.replace("lora_A", "lora_B")
    assert final[key_a].shape == (8, 32) and torch.equal(final[key_a][4:], initial[key_a])
    assert final[key_b].shape == (32, 8) and torch.equal(final[key_b][:, 4:], -initial[key_b])
    assert (tmp_path / "ours-init" / "adapter_config.json").read_text() == init_config
    assert json.loads(init_config)["init_lora_weights"] is True


def test_embedding_factors_are_converted_too(tmp_path):
    base = emb_mlp()
    ids = input_ids()
    model = peft_core.get_peft_model(
        copy.deepcopy(base), peft_lora.LoraConfig(r=2, init_lora_weights="pissa", target_modules=["emb", "lin0"])
    )
    model.peft_config["default"].init_lora_weights = True
    model.save_pretrained(tmp_path / "init")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_" in name:
                param.add_(0.1)
    trained = logits(model, ids)
    model.save_pretrained(tmp_path / "ft", path_initial_model_for_weight_conversion=tmp_path / "init")
    loaded = peft_core.PeftModel.from_pretrained(emb_mlp(), tmp_path / "ft")
    torch.testing.assert_close(logits(loaded, ids), trained, atol=2e-5, rtol=1e-4)


def test_unconvertible_adapters_are_refused_and_nothing_is_written(tmp_path):
    base = tiny_llama()
    cases = [
        (dict(init_lora_weights="pissa", use_rslora=True, rank_pattern={"q_proj": 2}), ConfigError, "use_rslora"),
        (dict(use_dora=True), ConfigError, "DoRA"),
    ]
    for i, (extra, error, match) in enumerate(cases):
        with pytest.warns(UserWarning) if "rank_pattern" in extra else _nothing():
            model = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(target_modules=["q_proj"], **extra))
        model.save_pretrained(tmp_path / f"init{i}")
        with pytest.raises(error, match=match):
            model.save_pretrained(tmp_path / f"ft{i}", path_initial_model_for_weight_conversion=tmp_path / f"init{i}")
        assert not (tmp_path / f"ft{i}").exists()
    other = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(target_modules=["v_proj"]))
    other.save_pretrained(tmp_path / "other")
    model = peft_core.get_peft_model(
        copy.deepcopy(base), peft_lora.LoraConfig(init_lora_weights="olora", target_modules=["q_proj"])
    )
    with pytest.raises(AdapterLoadError, match="initial adapter"):
        model.save_pretrained(tmp_path / "ft", path_initial_model_for_weight_conversion=tmp_path / "other")
    assert not (tmp_path / "ft").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
