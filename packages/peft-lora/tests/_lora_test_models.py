"""Tiny models and helpers shared by peft-lora's tests (put on sys.path by conftest.py).

Every model is built from a config with random weights: nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

VOCAB = 128


@functools.lru_cache(maxsize=None)
def _llama(seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def tiny_llama(seed: int = 0):
    """A fresh copy of the tiny Llama (built once per seed)."""
    return copy.deepcopy(_llama(seed))


@functools.lru_cache(maxsize=None)
def _gpt2(seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=64)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # random (non-zero) biases so bias handling is visible
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0, 0.1)
    return model


def tiny_gpt2(seed: int = 0):
    return copy.deepcopy(_gpt2(seed))


@functools.lru_cache(maxsize=None)
def _moe(kind: str, seed: int):
    """Tiny transformers 5 mixture-of-experts models: stacked 3-D expert weights (`mlp.experts.gate_up_proj`,
    `mlp.experts.down_proj`), 4 experts, 2 per token; GPT-OSS stores them (in, out) (`is_transposed`)."""
    import transformers

    torch.manual_seed(seed)
    common = dict(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=8
    )
    if kind == "qwen3_moe":
        config = transformers.Qwen3MoeConfig(
            intermediate_size=32, moe_intermediate_size=8, num_experts=4, num_experts_per_tok=2, **common
        )
        model = transformers.Qwen3MoeForCausalLM(config)
    elif kind == "mixtral":
        config = transformers.MixtralConfig(intermediate_size=8, num_local_experts=4, num_experts_per_tok=2, **common)
        model = transformers.MixtralForCausalLM(config)
    elif kind == "gpt_oss":
        config = transformers.GptOssConfig(
            intermediate_size=8,
            num_local_experts=4,
            num_experts_per_tok=2,
            layer_types=["full_attention", "sliding_attention"],
            **common,
        )
        model = transformers.GptOssForCausalLM(config)
        with torch.no_grad():  # GPT-OSS initialises expert weights to zero: make them random
            for name, param in model.named_parameters():
                if ".experts." in name:
                    param.normal_(0, 0.2)
    else:
        raise ValueError(kind)
    return model.eval()


def tiny_moe(kind: str, seed: int = 0):
    """A fresh copy of a tiny MoE model: kind is 'qwen3_moe', 'mixtral' or 'gpt_oss'."""
    return copy.deepcopy(_moe(kind, seed))


class ConvNet(nn.Module):
    """Conv1d/2d/3d, a Linear head and an embedding: every layer type LoRA supports outside transformers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.pointwise = nn.Conv2d(8, 8, kernel_size=1)
        self.conv1d = nn.Conv1d(8, 6, kernel_size=3, padding=1)
        self.conv3d = nn.Conv3d(1, 4, kernel_size=(1, 3, 3), padding=(0, 1, 1))
        self.head = nn.Linear(6 * 8 + 4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.pointwise(torch.relu(self.conv2d(x))))  # [B, 8, 8, 8]
        a = torch.relu(self.conv1d(h.mean(dim=3)))  # [B, 6, 8]
        b = self.conv3d(h[:, :1].unsqueeze(1))  # [B, 4, 1, 8, 8]
        return self.head(torch.cat([a.flatten(1), b.flatten(1)], dim=1))


def conv_net(seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    return ConvNet().eval()


class EmbMLP(nn.Module):
    """An embedding followed by an MLP (custom model, no transformers)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16, padding_idx=0)
        self.lin0 = nn.Linear(16, 32)
        self.lin1 = nn.Linear(32, 16, bias=False)
        self.head = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.lin1(torch.relu(self.lin0(self.emb(ids))))))


def emb_mlp(seed: int = 0) -> EmbMLP:
    torch.manual_seed(seed)
    return EmbMLP().eval()


def input_ids(batch: int = 2, length: int = 7, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=g)


def images(batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 8, 8, generator=g)


def logits(model, ids: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        out = model(ids, **kwargs)
    return out.logits if hasattr(out, "logits") else out


def randomize_lora(model, seed: int = 123, std: float = 0.2, biases: str | None = None) -> None:
    """Give the adapter random values, as if trained, so that equal outputs prove something.

    LoRA factors get N(0, std); DoRA magnitudes and modules_to_save copies are perturbed; `biases`
    ("all" or "lora_only") also perturbs the base biases that bias mode trains.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=g).to(param.device)
            if "lora_magnitude_vector" in name:
                param.mul_(1 + 0.1 * noise)
            elif ".lora_" in name or name.startswith("lora_"):
                param.copy_(noise * std)
            elif ".modules_to_save." in name:
                param.add_(noise * 0.05)
            elif biases == "all" and name.endswith(".bias") and ".original_module." not in name:
                param.add_(noise * 0.05)
            elif biases == "lora_only" and name.endswith(".base_layer.bias"):
                param.add_(noise * 0.05)
