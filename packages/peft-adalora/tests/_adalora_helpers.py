"""Helpers shared by peft-adalora's tests (put on sys.path by conftest.py): a whole training schedule,
"as if trained" values, inputs. The tiny models are the conformance kit's (`peft_core.testing.models`),
fresh copies with the same weights on every call.
"""

from __future__ import annotations

import warnings

import torch

from peft_core.testing import models, output_of

VOCAB = models.VOCAB
tiny_llama = models.LLAMA.build
tiny_gpt2 = models.GPT2.build
conv_net = models.CONV.build  # conv2d 3->8 (3x3, padding 1), pointwise, conv1d, conv3d, head
mlp = models.MLP.build  # lin0 16->32, norm, lin1 32->32, lin2 32->16

# A full AdaLoRA schedule in 20 steps: 3 warm-up steps, pruning every 2 steps until step 17, 3 final steps.
SCHEDULE = dict(init_r=6, target_r=2, tinit=3, tfinal=3, deltaT=2, total_step=20)


def input_ids() -> torch.Tensor:
    """The kit's token ids for its tiny Llama / GPT-2 (4 rows of 6)."""
    return models.LLAMA.make_inputs()["input_ids"]


def images() -> torch.Tensor:
    """The kit's inputs of its conv model (4 images, 3x8x8)."""
    return models.CONV.make_inputs()["x"]


def logits(model, inputs: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return output_of(model(inputs, **kwargs))


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
