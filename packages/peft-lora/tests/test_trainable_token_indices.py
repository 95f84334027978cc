"""LoRA's `trainable_token_indices` (train new token rows next to LoRA) and `ensure_weight_tying`.

Compatibility cases run Hugging Face PEFT 0.21.2 and peft-lora with the same config on tiny Llama
(untied and tied) and GPT-2 (tied) models: bit-identical outputs both ways, the same files (the rows
under `embed_tokens.token_adapter.trainable_tokens_delta`, never the whole embedding).
"""

from __future__ import annotations

import warnings

import peft_core
import pytest
import torch
from _hf_compat import roundtrip, tensors
from _lora_test_models import input_ids, logits, tiny_gpt2
from peft_core.errors import ConfigError
from peft_core.testing import models
from peft_lora import LoraConfig
from peft_trainable_tokens import TrainableTokensLayer


def llama(tied: bool = False):
    """The kit's tiny Llama, untied or with the LM head tied to the input embedding."""
    return (models.LLAMA_TIED if tied else models.LLAMA).build()


def _perturb(model, seed):
    """Every trainable tensor (LoRA factors and token rows) random, as if trained."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=g) * 0.3)


def _run(model):
    return logits(model.eval(), input_ids())


ROWS = [3, 5, 9]


@pytest.mark.compat
@pytest.mark.parametrize(
    "make, config",
    [
        (llama, dict(r=2, target_modules=["q_proj"], trainable_token_indices=ROWS)),
        (lambda: llama(True), dict(r=2, target_modules=["q_proj", "v_proj"], trainable_token_indices=ROWS)),
        (lambda: llama(True), dict(r=2, target_modules=["q_proj"], trainable_token_indices=ROWS, ensure_weight_tying=True)),
        (tiny_gpt2, dict(r=2, target_modules=["c_attn"], trainable_token_indices=ROWS)),
        (llama, dict(r=2, target_modules=["q_proj"], trainable_token_indices={"embed_tokens": ROWS, "lm_head": [1, 2]})),
        (lambda: llama(True), dict(r=2, target_modules=["o_proj"], trainable_token_indices={"embed_tokens": ROWS, "lm_head": ROWS})),
        (lambda: llama(True), dict(r=2, target_modules=["o_proj"], trainable_token_indices={"embed_tokens": ROWS, "lm_head": [1]})),
    ],
    ids=["untied", "tied", "tied-ensure", "gpt2", "dict-untied", "dict-tied-same", "dict-tied-different"],
)
def test_token_rows_match_hf_both_ways(tmp_path, make, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ours = roundtrip(tmp_path, make, _run, config, randomize=_perturb)
    saved = tensors(tmp_path / "ours")
    token_keys = {k: v for k, v in saved.items() if "trainable_tokens" in k}
    assert all(k.endswith(".token_adapter.trainable_tokens_delta") for k in token_keys)
    assert not [k for k in saved if k.endswith("embed_tokens.base_layer.weight") or k.endswith("wte.weight")]
    assert any(v == ((len(ROWS), 32), torch.float32) for v in token_keys.values())  # the rows, not the embedding


def test_only_rows_and_lora_train_and_the_tied_head_follows():
    base = llama(True)
    model = peft_core.get_peft_model(llama(True), LoraConfig(r=2, target_modules=["q_proj"], trainable_token_indices=ROWS))
    inner = model.get_base_model()
    assert isinstance(inner.model.embed_tokens, TrainableTokensLayer)
    assert isinstance(inner.lm_head, TrainableTokensLayer) and inner.lm_head.tied_to is inner.model.embed_tokens
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "base_model.model.model.embed_tokens.trainable_tokens_delta.default" in trainable
    assert all(".lora_" in n or "trainable_tokens_delta" in n for n in trainable)
    assert torch.equal(_run(model), _run(base))  # a no-op start
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids = input_ids()
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    rows = inner.model.embed_tokens.weight
    others = [i for i in range(128) if i not in ROWS]
    assert torch.equal(rows[others], base.model.embed_tokens.weight[others])
    assert not torch.equal(rows[ROWS], base.model.embed_tokens.weight[ROWS])
    assert torch.equal(inner.lm_head.weight, rows)  # the head computes with the trained rows
    merged = model.merge_and_unload()
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    assert torch.equal(merged.model.embed_tokens.weight, rows)


def test_ensure_weight_tying_refuses_different_ids_and_warns_without_tying():
    with pytest.raises(ConfigError, match="different token ids"):
        peft_core.get_peft_model(
            llama(True),
            LoraConfig(
                target_modules=["q_proj"],
                trainable_token_indices={"embed_tokens": ROWS, "lm_head": [1]},
                ensure_weight_tying=True,
            ),
        )
    with pytest.warns(UserWarning, match="does not have tied weights"):
        peft_core.get_peft_model(
            llama(False), LoraConfig(target_modules=["q_proj"], trainable_token_indices=ROWS, ensure_weight_tying=True)
        )
    with pytest.raises(ConfigError, match="not supported by peft-lora"):
        peft_core.get_peft_model(
            llama(True), LoraConfig(target_modules=["q_proj", "embed_tokens"], ensure_weight_tying=True)
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(target_modules=["q_proj"], modules_to_save=["model.embed_tokens"]), "modules_to_save"),
        (dict(target_modules=["q_proj", "embed_tokens"]), "already adapted"),
        (dict(target_modules=["q_proj"], trainable_token_indices={"nope": [1]}), "no module"),
        (dict(target_modules=["q_proj"], trainable_token_indices=[1, 500]), "outside the embedding"),
        (dict(target_modules=["q_proj"], trainable_token_indices=[1, 1]), "more than once"),
    ],
)
def test_conflicts_and_bad_ids_are_refused(kwargs, match):
    kwargs.setdefault("trainable_token_indices", ROWS)
    base = llama()
    with pytest.raises(ConfigError, match=match):
        peft_core.get_peft_model(base, LoraConfig(**kwargs))
    assert not any(isinstance(m, (TrainableTokensLayer, peft_core.BaseTunerLayer)) for m in base.modules())


def test_two_adapters_with_rows_save_and_reload(tmp_path):
    model = peft_core.get_peft_model(llama(), LoraConfig(r=2, target_modules=["q_proj"], trainable_token_indices=ROWS))
    model.add_adapter("other", LoraConfig(r=2, target_modules=["v_proj"], trainable_token_indices=[7, 8]))
    _perturb(model, 1)
    model.set_adapter("other")
    _perturb(model, 2)
    second = _run(model)
    model.set_adapter("default")
    first = _run(model)
    model.save_pretrained(tmp_path)
    loaded = peft_core.PeftModel.from_pretrained(llama(), tmp_path)
    loaded.load_adapter(tmp_path, "other", subfolder="other")
    assert torch.equal(_run(loaded), first)
    loaded.set_adapter("other")
    assert torch.equal(_run(loaded), second)
