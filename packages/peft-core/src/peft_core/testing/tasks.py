"""Tiny transformers models per task type, their inputs, and a reference for `generate()`: what
prompt-learning methods (virtual tokens, prefixes) test against.

Models are built with a fixed seed (`task_model(task, seed)` gives the same weights every call);
`batch()` has two rows of token ids and one padded position.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .models import VOCAB, make_bert, make_llama, make_t5, output_of

TASKS = ("CAUSAL_LM", "SEQ_2_SEQ_LM", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION")


def task_model(task: str, seed: int = 0) -> nn.Module:
    """Llama (CAUSAL_LM), T5 (SEQ_2_SEQ_LM) or a BERT with the task's head, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "CAUSAL_LM":
            model = make_llama()
        elif task == "SEQ_2_SEQ_LM":
            model = make_t5(initializer_factor=10.0)  # larger weights: greedy decoding is not stuck on one token
        else:
            model = make_bert(task)
    return model.eval()


def batch(rows: int = 2, length: int = 5, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask); row 0 has one padded position."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (rows, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, 0] = 0
    return ids, mask


def inputs_for(task: str) -> dict[str, torch.Tensor]:
    ids, mask = batch()
    inputs = {"input_ids": ids, "attention_mask": mask}
    if task == "SEQ_2_SEQ_LM":
        inputs["decoder_input_ids"] = ids[:, :3]
    return inputs


@torch.no_grad()
def run(model: nn.Module, task: str) -> torch.Tensor:
    """The main output of `model` on `inputs_for(task)`."""
    return output_of(model(**inputs_for(task)))


@torch.no_grad()
def greedy_by_forward(model: nn.Module, task: str, steps: int = 4) -> torch.Tensor:
    """Greedy decoding by re-running the full forward pass each step (no cache): the reference for
    `generate(..., do_sample=False)` on `batch()`."""
    ids, mask = batch()
    if task == "SEQ_2_SEQ_LM":
        seq = torch.zeros(ids.shape[0], 1, dtype=torch.long)
        for _ in range(steps):
            nxt = model(input_ids=ids, attention_mask=mask, decoder_input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        return seq
    seq, am = ids.clone(), mask.clone()
    for _ in range(steps):
        nxt = model(input_ids=seq, attention_mask=am).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
        am = torch.cat([am, torch.ones_like(nxt)], 1)
    return seq


def assert_disabled_is_base(model: nn.Module, task: str) -> None:
    """Inside `model.disable_adapter()` the output is the base task model's (bit for bit); outside it is not."""
    base = run(task_model(task), task)
    with model.disable_adapter():
        assert torch.equal(run(model, task), base), f"{task}: the output inside disable_adapter() is not the base model's"
    assert not torch.equal(run(model, task), base), f"{task}: the adapter leaves the output unchanged"


def assert_hf_file_reloads_alike(hf_model: nn.Module, task: str, folder: str | os.PathLike) -> None:
    """Hugging Face PEFT's adapter `hf_model`, saved to `folder`, gives loaded here (onto a fresh
    `task_model(task)`) bit for bit the output it gives reloaded in Hugging Face PEFT."""
    from ..peft_model import PeftModel
    from .hf import hf_peft

    hf_model.save_pretrained(folder)
    reloaded_in_hf = run(hf_peft().PeftModel.from_pretrained(task_model(task), folder), task)
    assert torch.equal(run(PeftModel.from_pretrained(task_model(task), folder), task), reloaded_in_hf)


def assert_saved_alike(
    hf_model: nn.Module, ours: nn.Module, folder: str | os.PathLike, atol: float = 0.0, rtol: float = 0.0
) -> None:
    """Both adapters, saved to `folder`/hf and `folder`/ours, hold the same tensors (bit for bit, or within
    `torch.allclose`'s `atol` / `rtol`)."""
    from safetensors.torch import load_file

    saved = []
    for name, model in (("hf", hf_model), ("ours", ours)):
        model.save_pretrained(os.path.join(folder, name))
        saved.append(load_file(os.path.join(folder, name, "adapter_model.safetensors")))
    theirs, mine = saved
    assert theirs.keys() == mine.keys(), sorted(set(theirs) ^ set(mine))
    differ = [key for key in theirs if not torch.allclose(theirs[key], mine[key], atol=atol, rtol=rtol)]
    assert not differ, f"saved values differ: {differ}"
