"""CARTRIDGE's own behaviour: a cartridge taken from the base model's cache over a text acts exactly like
that text in front of the input; frozen leading rows; the cache-to-matrix layout (equal to Hugging Face
PEFT's); initialisation from text; composing saved cartridges. The conformance kit checks the rest."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from peft_cartridge import (
    CartridgeConfig,
    compose_cartridge_adapters,
    initialize_kv_prefix_from_past_key_values,
    initialize_kv_prefix_from_text,
    prompt_embeddings_from_past_key_values,
)
from peft_core import ConfigError, PeftModel, UnsupportedOperationError, get_peft_method, get_peft_model
from peft_core.testing.hf import hf_peft
from peft_core.testing.models import VOCAB
from peft_core.testing.tasks import batch, greedy_by_forward, task_model

torch.set_num_threads(1)


def _cartridge(tokens: int = 4, frozen: int = 1) -> nn.Module:
    config = CartridgeConfig(task_type="CAUSAL_LM", num_virtual_tokens=tokens, num_frozen_tokens=frozen)
    return get_peft_model(task_model("CAUSAL_LM"), config)


@torch.no_grad()
def test_a_cartridge_from_a_texts_cache_acts_like_the_text():
    base = task_model("CAUSAL_LM")
    gen = torch.Generator().manual_seed(0)
    prefix, rest = torch.randint(2, VOCAB, (1, 4), generator=gen), torch.randint(2, VOCAB, (1, 3), generator=gen)
    expected = base(input_ids=torch.cat([prefix, rest], dim=1)).logits[:, 4:]
    model = _cartridge(tokens=4).eval()
    loaded = initialize_kv_prefix_from_past_key_values(model, past_key_values=base(input_ids=prefix, use_cache=True).past_key_values)
    assert loaded.shape == (4, 2 * 2 * 16)  # 2 layers, key and value, 2 KV heads x head_dim 8 (grouped-query attention)
    got = model(input_ids=rest, attention_mask=torch.ones_like(rest)).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_generate_follows_the_forward():
    model = _cartridge().eval()
    ids, mask = batch()
    got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, greedy_by_forward(model, "CAUSAL_LM"))


def test_frozen_rows_never_train(tmp_path):
    model = _cartridge(tokens=4, frozen=2)
    encoder = model.base_model.prompt_encoder["default"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["base_model.prompt_encoder.default.trainable_embedding"]
    frozen = encoder.frozen_embedding.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    ids, mask = batch()
    model(input_ids=ids, attention_mask=mask).logits.pow(2).mean().backward()
    optimizer.step()
    assert torch.equal(encoder.frozen_embedding, frozen) and encoder.frozen_embedding.grad is None
    model.base_model.set_adapter("default")  # re-activating keeps the leading rows frozen
    assert not encoder.frozen_embedding.requires_grad and encoder.trainable_embedding.requires_grad
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")["prompt_embeddings"]
    assert torch.equal(saved, torch.cat([frozen, encoder.trainable_embedding.detach()]))


def test_cache_layout_equals_hugging_faces():
    base = task_model("CAUSAL_LM")
    with torch.no_grad():
        cache = base(input_ids=torch.arange(2, 8).unsqueeze(0), use_cache=True).past_key_values
    matrix = prompt_embeddings_from_past_key_values(cache, num_virtual_tokens=5)
    legacy = tuple((layer.keys, layer.values) for layer in cache.layers)
    assert torch.equal(prompt_embeddings_from_past_key_values(legacy, num_virtual_tokens=5), matrix)
    key, value = cache.layers[1].keys, cache.layers[1].values  # [1, kv heads, tokens, head_dim]
    row = matrix[3].view(2 * 2, 2, 8)  # token 3: (layer, key/value) blocks of heads x head_dim
    assert torch.equal(row[2], key[0, :, 3]) and torch.equal(row[3], value[0, :, 3])
    peft = hf_peft()
    if peft is not None:
        assert torch.equal(peft.prompt_embeddings_from_past_key_values(legacy, num_virtual_tokens=5), matrix)
    with pytest.raises(ConfigError, match="at least 9"):
        prompt_embeddings_from_past_key_values(cache, num_virtual_tokens=9)


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>"] + [f"w{i}" for i in range(2, 40)]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


@torch.no_grad()
def test_initialise_from_text():
    model = _cartridge(tokens=3).eval()
    matrix = initialize_kv_prefix_from_text(model, _word_tokenizer(), text="w5 w9 w30 w2", max_length=4)
    base = task_model("CAUSAL_LM")
    ids = torch.tensor([[4, 8, 29, 1]])  # the words' ids (no chat template: plain tokenisation)
    expected = prompt_embeddings_from_past_key_values(base(input_ids=ids, use_cache=True).past_key_values, num_virtual_tokens=3)
    assert torch.equal(matrix, expected)
    assert torch.equal(model.base_model.prompt_matrix(), expected)
    with pytest.raises(UnsupportedOperationError, match="no cache-prefix adapter"):
        initialize_kv_prefix_from_text(task_model("CAUSAL_LM"), _word_tokenizer(), text="w5")


def test_compose_concatenates_saved_cartridges(tmp_path):
    first, second = _cartridge(tokens=3, frozen=1), _cartridge(tokens=2, frozen=0)
    first.save_pretrained(tmp_path / "a")
    second.save_pretrained(tmp_path / "b")
    compose_cartridge_adapters([tmp_path / "a", tmp_path / "b"], output_path=tmp_path / "ab")
    config = json.loads((tmp_path / "ab" / "adapter_config.json").read_text())
    assert config["num_virtual_tokens"] == 5 and config["num_frozen_tokens"] == 1 and config["peft_type"] == "CARTRIDGE"
    files = [load_file(tmp_path / d / "adapter_model.safetensors")["prompt_embeddings"] for d in ("a", "b", "ab")]
    assert torch.equal(files[2], torch.cat(files[:2]))
    composed = PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path / "ab")
    assert torch.equal(composed.base_model.prompt_matrix(), files[2])
    other = get_peft_model(task_model("SEQ_2_SEQ_LM"), CartridgeConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=2))
    other.save_pretrained(tmp_path / "t5")
    with pytest.raises(ConfigError, match="differ in task_type"):
        compose_cartridge_adapters([tmp_path / "a", tmp_path / "t5"], output_path=tmp_path / "bad")
    with pytest.raises(ConfigError, match="at least 2"):
        compose_cartridge_adapters([tmp_path / "a"], output_path=tmp_path / "bad")
    assert not (tmp_path / "bad" / "adapter_model.safetensors").exists()


def test_registration_and_refusals():
    assert get_peft_method("cartridge").config_cls is CartridgeConfig
    assert any(ep.name == "cartridge" for ep in entry_points(group="peft.methods"))
    with pytest.raises(ConfigError, match="num_frozen_tokens"):
        CartridgeConfig(num_virtual_tokens=2, num_frozen_tokens=3)
    base = task_model("CAUSAL_LM")
    base.gradient_checkpointing_enable()
    with pytest.raises(UnsupportedOperationError, match="gradient checkpointing"):
        get_peft_model(base, CartridgeConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
