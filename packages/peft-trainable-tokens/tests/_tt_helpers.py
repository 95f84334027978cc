"""Tiny random transformers models and helpers for peft-trainable-tokens' tests (put on sys.path by conftest.py)."""

from __future__ import annotations

import copy
import functools

import torch

VOCAB = 64


@functools.lru_cache(maxsize=None)
def _llama(tied: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()


@functools.lru_cache(maxsize=None)
def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=2, n_head=2, vocab_size=VOCAB, n_positions=32)).eval()


def tiny_llama(tied: bool = False):
    return copy.deepcopy(_llama(tied))


def tiny_gpt2():
    return copy.deepcopy(_gpt2())


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def perturb(model, seed: int) -> None:
    """Give every trainable tensor random values, as if trained."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=g) * 0.5)
