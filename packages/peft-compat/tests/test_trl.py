"""TRL's `SFTTrainer` with peft-compat: `peft_config=LoraConfig(...)` (TRL wraps the model with `get_peft_model`)
and a model already wrapped by `get_peft_model`. Both train only the adapter and save adapter-only
checkpoints and final models. A tiny Llama and an in-memory word-level tokenizer; nothing is downloaded.
"""

from __future__ import annotations

import os

import torch
from datasets import Dataset
from safetensors.torch import load_file
from trl import SFTConfig, SFTTrainer

import peft
from compat_models import tiny_llama, word_tokenizer
from peft import LoraConfig, get_peft_model

ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors"}
FULL_MODEL_FILES = {"model.safetensors", "pytorch_model.bin"}


def _dataset(n: int = 16) -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset.from_list([{"text": " ".join(str(int(t)) for t in torch.randint(0, 100, (12,), generator=g))}
                              for _ in range(n)])


def _config(out, **kwargs) -> SFTConfig:
    defaults = dict(output_dir=str(out), per_device_train_batch_size=4, max_steps=4, save_steps=2, learning_rate=5e-2,
                    report_to=[], use_cpu=True, logging_steps=1, disable_tqdm=True, max_length=16,
                    dataloader_num_workers=0, seed=0)
    defaults.update(kwargs)
    return SFTConfig(**defaults)


def _check_run(trainer: SFTTrainer, out) -> None:
    model = trainer.model
    assert isinstance(model, peft.PeftModel)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad and "layers.0" in n}
    trainer.train()
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed, "the adapter did not train"
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen), "base weights changed"
    for step in (2, 4):
        files = set(os.listdir(out / f"checkpoint-{step}"))
        assert ADAPTER_FILES <= files and not FULL_MODEL_FILES & files, files
    trainer.save_model(str(out / "final"))
    files = set(os.listdir(out / "final"))
    assert ADAPTER_FILES <= files and not FULL_MODEL_FILES & files, files
    saved = load_file(out / "final" / "adapter_model.safetensors")
    assert saved and all("lora_" in k for k in saved)
    live = {k.replace(".default", ""): v for k, v in model.state_dict().items() if "lora_" in k}
    assert saved.keys() == live.keys() and all(torch.equal(saved[k], live[k]) for k in saved)
    # (logits are not compared with the live model: under bf16 mixed precision accelerate leaves its autocast
    # wrapper on `model.forward` after training, with Hugging Face PEFT too)
    reloaded = peft.PeftModel.from_pretrained(tiny_llama(), out / "final")
    state = reloaded.state_dict()
    assert all(torch.equal(state[k.replace(".weight", ".default.weight")], v) for k, v in saved.items())


def test_sft_trainer_with_peft_config(tmp_path):
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=tiny_llama(), args=_config(tmp_path / "sft"), train_dataset=_dataset(),
                         processing_class=word_tokenizer(128), peft_config=config)
    _check_run(trainer, tmp_path / "sft")


def test_sft_trainer_with_a_model_wrapped_by_get_peft_model(tmp_path):
    torch.manual_seed(1)
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainer = SFTTrainer(model=model, args=_config(tmp_path / "wrapped"), train_dataset=_dataset(),
                         processing_class=word_tokenizer(128))
    assert trainer.model is model
    _check_run(trainer, tmp_path / "wrapped")
