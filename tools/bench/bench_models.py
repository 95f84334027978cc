"""Models (random weights from transformers configs, never downloaded) and the two libraries under test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class Sizes:
    """Model and batch sizes of one benchmark setting (`full` or `quick`)."""

    deep_layers: tuple[int, ...]  # depths of the deep narrow model (hidden 64): shows linearity in targets
    deep_hidden: int
    mid_hidden: int
    mid_intermediate: int
    mid_layers: int
    mid_heads: int
    vocab: int
    seq: int
    train_batch: int
    mixed_batch: int
    rank: int
    load_memory_rank: int
    repeats: int
    import_runs: int
    # many adapters in one batch (a multi-tenant server): rows, adapter counts, prefill tokens per row
    tenant_rows: int = 64
    tenant_counts: tuple[int, ...] = (4, 16, 64)
    prefill_tokens: int = 64


FULL = Sizes(
    deep_layers=(16, 64),
    deep_hidden=64,
    mid_hidden=512,
    mid_intermediate=1376,
    mid_layers=4,
    mid_heads=8,
    vocab=2048,
    seq=128,
    train_batch=4,
    mixed_batch=16,
    rank=16,
    load_memory_rank=128,
    repeats=9,
    import_runs=12,
)

QUICK = Sizes(
    deep_layers=(2, 4),
    deep_hidden=32,
    mid_hidden=64,
    mid_intermediate=128,
    mid_layers=2,
    mid_heads=4,
    vocab=128,
    seq=16,
    train_batch=2,
    mixed_batch=8,
    rank=4,
    load_memory_rank=8,
    repeats=2,
    import_runs=1,
    tenant_rows=8,
    tenant_counts=(2, 8),
    prefill_tokens=4,
)


def deep_model(layers: int, sizes: Sizes) -> torch.nn.Module:
    """Deep narrow Llama: many small targets (injection and merge cost per target)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    h = sizes.deep_hidden
    cfg = LlamaConfig(
        vocab_size=128,
        hidden_size=h,
        intermediate_size=2 * h,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(cfg)


def mid_model(sizes: Sizes) -> torch.nn.Module:
    """Mid-size Llama (hidden 512, 4 layers in the full setting): compute-bound training and inference."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=sizes.vocab,
        hidden_size=sizes.mid_hidden,
        intermediate_size=sizes.mid_intermediate,
        num_hidden_layers=sizes.mid_layers,
        num_attention_heads=sizes.mid_heads,
        num_key_value_heads=sizes.mid_heads,
        max_position_embeddings=max(512, sizes.seq),
    )
    model = LlamaForCausalLM(cfg)
    model.config.use_cache = False
    return model


def input_ids(sizes: Sizes, batch: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, sizes.vocab, (batch, sizes.seq), generator=g)


@dataclass(frozen=True)
class Lib:
    """One library's entry points, so every case runs the same code for both."""

    name: str
    get_peft_model: Callable[..., Any]
    lora_config: Callable[..., Any]
    peft_model: Any

    def config(self, rank: int, **kw: Any) -> Any:
        return self.lora_config(r=rank, lora_alpha=2 * rank, target_modules=list(PROJECTIONS), **kw)

    def lora(self, model: torch.nn.Module, rank: int, low_cpu_mem_usage: bool = False, **kw: Any) -> Any:
        """`get_peft_model` with LoRA of rank `rank` on every projection of a Llama."""
        return self.get_peft_model(model, self.config(rank, **kw), low_cpu_mem_usage=low_cpu_mem_usage)


def ours() -> Lib:
    import peft_core
    import peft_lora

    return Lib("ours", peft_core.get_peft_model, peft_lora.LoraConfig, peft_core.PeftModel)


def hf() -> Lib:
    import peft

    return Lib("hf", peft.get_peft_model, peft.LoraConfig, peft.PeftModel)


def libraries() -> list[Lib]:
    return [ours(), hf()]


def randomise_lora(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-zero B factors (a fresh LoRA adapter is a no-op; merges and mixed batches should do real work)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
