"""Helpers shared by peft-lora's tests (put on sys.path by conftest.py): the conformance kit's tiny
models (`peft_core.testing.models`, random weights, nothing downloaded), inputs, and LoRA's randomizer.
"""

from __future__ import annotations

import copy
import functools

import torch
from peft_core.testing import models
from peft_core.testing.models import VOCAB, output_of


# The kit's tiny models (built once per process with a fixed seed; each call returns a fresh copy).
tiny_llama = models.LLAMA.build
tiny_gpt2 = models.GPT2.build  # transformers Conv1D layers, random non-zero biases
conv_net = models.CONV.build  # Conv1d/2d/3d and a Linear head
emb_mlp = models.EMBEDDING.build  # an embedding (padding row 0) and linear layers


def input_ids(batch: int = 2, length: int = 7, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=g)


def images(batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 8, 8, generator=g)


def logits(model, ids: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return output_of(model(ids, **kwargs))


# Models, target modules and input makers whose mixed-adapter batches are checked (on CPU and on CUDA).
MIXED_BATCH_CASES = [
    (tiny_llama, ["q_proj", "v_proj", "embed_tokens", "down_proj"], input_ids),
    (tiny_gpt2, ["c_attn", "c_fc"], input_ids),
    (conv_net, ["conv2d", "pointwise", "conv1d", "conv3d", "head"], images),
]


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
