"""`save_embedding_layers=True` saves the input/output embeddings as Hugging Face PEFT does, and such a
file writes them back only when the loader allows it (`load_embedding_layers=True`)."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file

from peft_core import AdapterLoadError, PeftModel, get_peft_model
from peft_core.testing import models
from peft_lora import LoraConfig


def _llama():
    return models.make_llama(seed=0).eval()


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], ["q_proj", "embed_tokens"]])
def test_save_embedding_layers_true_saves_the_keys_hf_saves(tmp_path, targets):
    hf_peft = pytest.importorskip("peft")
    base = _llama()
    ours = get_peft_model(copy.deepcopy(base), LoraConfig(target_modules=targets))
    ours.save_pretrained(tmp_path / "ours", save_embedding_layers=True)
    theirs = hf_peft.get_peft_model(copy.deepcopy(base), hf_peft.LoraConfig(target_modules=targets))
    theirs.save_pretrained(tmp_path / "hf", save_embedding_layers=True)
    ours_keys = set(load_file(tmp_path / "ours" / "adapter_model.safetensors"))
    hf_keys = set(load_file(tmp_path / "hf" / "adapter_model.safetensors"))
    assert ours_keys == hf_keys
    assert any("embed_tokens" in k and not ("lora_" in k) for k in ours_keys)  # the full embedding is there


def test_resized_vocabulary_round_trip_needs_load_embedding_layers(tmp_path):
    base = _llama()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    with torch.no_grad():
        model.get_base_model().model.embed_tokens.weight.add_(1)  # e.g. new token rows trained or initialised
    model.save_pretrained(tmp_path, save_embedding_layers=True)
    ids = torch.randint(0, 128, (2, 5))
    with torch.no_grad():
        expected = model(ids).logits
    with pytest.raises(AdapterLoadError, match="embed_tokens.weight"):
        PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, load_embedding_layers=True)
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, expected)
