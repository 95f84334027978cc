"""Trainable tokens: only the chosen rows train and are saved; tied output layers follow; errors.

Merging, disabling, several adapters, mixed batches, saving and Hugging Face files are checked by the
conformance kit (test_conformance.py); these tests cover what is particular to trainable tokens."""

from __future__ import annotations

import pytest
import torch
from _tt_helpers import VOCAB, logits, perturb
from peft_core import PeftModel, get_peft_model
from peft_core.errors import ConfigError
from peft_trainable_tokens import TrainableTokensConfig, TrainableTokensLayer
from safetensors.torch import load_file

ROWS = [3, 5, 7]


def test_default_init_is_a_no_op_and_only_the_rows_train(llama, ids):
    base = llama()
    model = get_peft_model(llama(), TrainableTokensConfig(token_indices=ROWS))
    assert torch.equal(logits(model, ids), logits(base, ids))
    trainable = [(n, tuple(p.shape)) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [("base_model.model.model.embed_tokens.trainable_tokens_delta.default", (3, 32))]
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    for _ in range(2):
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    embedding = model.get_base_model().model.embed_tokens
    assert isinstance(embedding, TrainableTokensLayer)
    assert torch.equal(embedding.get_base_layer().weight, base.model.embed_tokens.weight)  # base untouched
    weight = embedding.weight  # what the model computes with
    others = [i for i in range(VOCAB) if i not in ROWS]
    assert torch.equal(weight[others], base.model.embed_tokens.weight[others])
    assert not torch.equal(weight[ROWS], base.model.embed_tokens.weight[ROWS])
    assert not torch.equal(logits(model, ids), logits(base, ids))


def test_file_holds_the_rows_not_the_embedding(tmp_path, llama, ids):
    model = get_peft_model(llama(), TrainableTokensConfig(token_indices=ROWS))
    perturb(model, 3)
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "adapter_model.safetensors")
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "base_model.model.model.embed_tokens.trainable_tokens_delta": (3, 32)
    }
    loaded = PeftModel.from_pretrained(llama(), tmp_path)
    assert torch.equal(logits(loaded, ids), logits(model, ids))


def test_tied_output_layer_follows_the_trained_rows(llama, ids):
    base = llama(tied=True)
    model = get_peft_model(llama(tied=True), TrainableTokensConfig(token_indices=ROWS, init_weights=False))
    inner = model.get_base_model()
    assert isinstance(inner.lm_head, TrainableTokensLayer) and inner.lm_head.tied_to is inner.model.embed_tokens
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "base_model.model.model.embed_tokens.trainable_tokens_delta.default"
    ]
    # the logits of the trained tokens come from the trained rows: rebuild them by hand
    with torch.no_grad():
        hidden = inner.model(ids).last_hidden_state
        expected = hidden @ inner.model.embed_tokens.weight.T
    torch.testing.assert_close(logits(model, ids), expected)
    merged = model.merge_and_unload()
    assert merged.lm_head.weight is merged.model.embed_tokens.weight  # still tied
    torch.testing.assert_close(logits(merged, ids), expected)
    assert not torch.equal(merged.model.embed_tokens.weight[ROWS], base.model.embed_tokens.weight[ROWS])


def test_two_adapters_disjoint_rows_mixed_batch_and_overlap(llama, ids):
    model = get_peft_model(llama(), TrainableTokensConfig(token_indices=[3, 5]))
    model.add_adapter("other", TrainableTokensConfig(token_indices=[7, 9]))
    perturb(model, 5)
    model.set_adapter("other")
    perturb(model, 6)
    model.eval()
    outs = {}
    for name in ("default", "other"):
        model.set_adapter(name)
        outs[name] = logits(model, ids)
    out = model(ids, adapter_names=["other", "default"]).logits.detach()
    assert torch.equal(out[0], outs["other"][0]) and torch.equal(out[1], outs["default"][1])
    model.base_model.set_adapter(["default", "other"])  # disjoint rows: both at once
    both = logits(model, ids)
    assert not torch.equal(both, outs["default"]) and not torch.equal(both, outs["other"])
    model.add_adapter("clash", TrainableTokensConfig(token_indices=[5, 6]))
    model.base_model.set_adapter(["default", "clash"])
    with pytest.raises(ValueError, match="disjoint"):
        logits(model, ids)


def test_rows_replace_rather_than_add(llama, ids):
    """A re-initialised (e.g. resized) embedding still gives the trained rows."""
    model = get_peft_model(llama(), TrainableTokensConfig(token_indices=ROWS))
    perturb(model, 7)
    expected = logits(model, ids)
    with torch.no_grad():
        model.get_base_model().model.embed_tokens.get_base_layer().weight[ROWS] = 123.0
    assert torch.equal(logits(model, ids), expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(token_indices=[1, VOCAB]), "outside the embedding"),
        (dict(token_indices=[]), "no token indices"),
        (dict(token_indices=[1, 1]), "more than once"),
        (dict(token_indices=[-1]), "negative"),
        (dict(token_indices=[1], target_modules=["input_layernorm"]), "nn.Embedding"),
    ],
)
def test_bad_input_is_refused_and_the_model_left_alone(llama, kwargs, match):
    base = llama()
    with pytest.raises(ConfigError, match=match):
        get_peft_model(base, TrainableTokensConfig(**kwargs))
    assert not any(isinstance(m, TrainableTokensLayer) for m in base.modules())
