"""Fixtures of peft-cli's tests: a tiny Llama saved to a folder, a LoRA adapter for it, a CLI runner."""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models

torch.set_num_threads(1)


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run `peft ARGS...` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from peft_cli.main import cli

    def run(*args: str):
        return runner.invoke(cli, list(args), prog_name="peft")

    return run


def tiny_llama():
    return models.make_llama(seed=0).eval()


@pytest.fixture
def base_dir(tmp_path):
    """A tiny Llama saved with save_pretrained (the --base of `peft merge`)."""
    path = tmp_path / "base"
    tiny_llama().save_pretrained(path)
    return path


@pytest.fixture
def lora_dir(tmp_path, base_dir):
    """A LoRA adapter with random (non-zero) B on the saved tiny Llama."""
    from peft_core import get_peft_model
    from peft_lora import LoraConfig
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, config)
    path = tmp_path / "adapter"
    model.save_pretrained(path)
    return path
