"""Smoke cases for `peft_core.testing.smoke_test` (tools/release.py runs them on the installed wheel).

Declared through the `peft.smoke_cases` entry point: each dict holds smoke_test keyword arguments
(optional `id`; `requires`: what a case needs beyond the package's dependencies).
"""

from __future__ import annotations

from typing import Any


def _tiny_llama() -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def _token_ids() -> Any:
    import torch

    return torch.randint(0, 64, (2, 5))


def cases() -> list[dict[str, Any]]:
    # prompt learning needs a transformers model (embeddings, a config, attention caches)
    return [{
        "id": "tiny-llama",
        "requires": ["transformers>=4.56"],
        "target_modules": (),
        "model_factory": _tiny_llama,
        "inputs_factory": _token_ids,
        "task_type": "CAUSAL_LM",
        "num_virtual_tokens": 4,
    }]
