"""Tiny models and helpers shared by peft-adalora's tests (put on sys.path by conftest.py).

Every model is built from a config with random weights: nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
import warnings

import torch
from torch import nn

VOCAB = 128

# A full AdaLoRA schedule in 20 steps: 3 warm-up steps, pruning every 2 steps until step 17, 3 final steps.
SCHEDULE = dict(init_r=6, target_r=2, tinit=3, tfinal=3, deltaT=2, total_step=20)


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


class ConvNet(nn.Module):
    """Two Conv2d layers (3x3 with padding and stride, 1x1) and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, stride=2)
        self.pointwise = nn.Conv2d(8, 6, kernel_size=1)
        self.head = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.pointwise(torch.relu(self.conv(x))))
        return self.head(h.flatten(1))


def conv_net(seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    return ConvNet().eval()


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(8, 16)
        self.lin1 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(torch.relu(self.lin0(x)))


def mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP().eval()


def input_ids(batch: int = 2, length: int = 7, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=g)


def images(batch: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 8, 8, generator=g)


def logits(model, inputs: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        out = model(inputs, **kwargs)
    return out.logits if hasattr(out, "logits") else out


def randomize_adalora(model, seed: int = 123, std: float = 0.3) -> None:
    """Give every AdaLoRA tensor random values, as if trained, so that equal outputs prove something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(f".{attr}." in name for attr in ("lora_A", "lora_B", "lora_E")):
                param.copy_(torch.randn(param.shape, generator=g) * std)


def train_schedule(
    lib, config_cls, base, steps: int | None = None, lr: float = 2e-2, device: str = "cpu", freeze_ranknum=False, **config
):
    """Train an AdaLoRA adapter through its whole schedule with `lib` (peft or peft_core).

    Returns the model and the total number of kept ranks after each step (None before any pruning).
    The same seed, data and optimiser give bit-identical runs in both libraries. `freeze_ranknum`:
    HF PEFT 0.21.2 turns `ranknum` into a trainable parameter when it moves it to another device or
    dtype (the optimiser then changes the scaling); freezing it restores HF's intended behaviour.
    """
    kwargs = dict(SCHEDULE, lora_alpha=8, task_type="CAUSAL_LM")
    kwargs.update(config)
    steps = kwargs["total_step"] if steps is None else steps
    torch.manual_seed(42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lib.get_peft_model(base.to(device), config_cls(**kwargs))
    if freeze_ranknum:
        for name, param in model.named_parameters():
            if ".ranknum." in name:
                param.requires_grad_(False)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(7)
    kept = []
    for step in range(steps):
        ids = torch.randint(0, VOCAB, (2, 8), generator=g).to(device)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        model.base_model.update_and_allocate(step)
        optimizer.zero_grad()
        pattern = model.peft_config["default"].rank_pattern
        kept.append(sum(sum(mask) for mask in pattern.values()) if pattern else None)
    return model.eval(), kept
