"""How each supported architecture's attention is read: the query states of the call, and the keys and
values of the adaption prompt, computed with the attention module's own projections.

- Llama / Mistral: `q_proj` with rotary position embeddings (the `position_embeddings` the decoder layer
  passes), `k_proj` / `v_proj` for the prompt (no rotation; grouped key/value heads repeated), and the
  extra attention output goes through `o_proj`.
- GPT-2: the query third of `c_attn`, the key and value thirds of `c_attn` for the prompt; the extra output
  is added as it is (no `c_proj`), as in Hugging Face PEFT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from peft_core import ConfigError
from peft_core.tuners.tuner import model_type_of


@dataclass(frozen=True)
class Architecture:
    name: str
    target_modules: str  # the attention modules' attribute name


LLAMA_LIKE = Architecture("llama", "self_attn")
GPT2 = Architecture("gpt2", "attn")
ARCHITECTURES = {"llama": LLAMA_LIKE, "mistral": LLAMA_LIKE, "gpt2": GPT2}


def architecture_of(model: nn.Module) -> Architecture:
    model_type = model_type_of(model)
    found = ARCHITECTURES.get(model_type)
    if found is None:
        raise ConfigError(
            f"Adaption prompt supports the model types {sorted(ARCHITECTURES)}, not {model_type!r} "
            f"({type(model).__name__}): it recomputes the attention's query states, which is architecture-specific."
        )
    return found


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def query_states(arch: Architecture, attention: nn.Module, hidden_states: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """`[batch, heads, tokens, head_dim]` queries of the call (as the attention module computes them)."""
    if arch is GPT2:
        if kwargs.get("encoder_hidden_states") is not None:
            projected = attention.q_attn(hidden_states)
        else:
            projected, _, _ = attention.c_attn(hidden_states).split(attention.split_size, dim=2)
        return projected.view(*projected.shape[:-1], -1, attention.head_dim).transpose(1, 2)
    batch, tokens, _ = hidden_states.size()
    heads = attention.config.num_attention_heads
    query = attention.q_proj(hidden_states).view(batch, tokens, heads, attention.head_dim).transpose(1, 2)
    embeddings = kwargs.get("position_embeddings")
    if embeddings is None:
        raise ValueError(
            "Adaption prompt needs the rotary `position_embeddings` the decoder layer passes to its attention "
            "(transformers >= 4.48); this model's attention was called without them."
        )
    cos, sin = embeddings
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return (query * cos) + (_rotate_half(query) * sin)


def prompt_keys_values(
    arch: Architecture, attention: nn.Module, prompt: torch.Tensor, batch: int, embed_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of the prompt `[1, length, hidden]`, `[batch, heads, length, head_dim]` each."""
    length = prompt.shape[1]
    if arch is GPT2:
        _, key, value = attention.c_attn(prompt).split(embed_dim, dim=2)
        heads = attention.config.num_attention_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(1, length, heads, attention.head_dim).repeat(batch, 1, 1, 1).transpose(1, 2)

        return split(key), split(value)
    factor = attention.k_proj.in_features // attention.k_proj.out_features  # query heads per key/value head
    kv_heads = attention.config.num_attention_heads // factor
    key, value = attention.k_proj(prompt), attention.v_proj(prompt)

    def heads_of(t: torch.Tensor) -> torch.Tensor:
        t = t.view(1, length, kv_heads, attention.head_dim).repeat(batch, 1, 1, 1).transpose(1, 2)
        return torch.repeat_interleave(t, repeats=factor, dim=1)

    return heads_of(key), heads_of(value)


def output_projection(arch: Architecture, attention: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x if arch is GPT2 else attention.o_proj(x)
