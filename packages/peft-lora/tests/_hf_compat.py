"""Round trips against Hugging Face PEFT 0.21.2 for the newer LoRA options (put on sys.path by conftest.py).

The file helpers are the conformance kit's (`peft_core.testing.hf`); `roundtrip` gives the kit's
`round_trip_adapters` LoRA kwargs once for both libraries and returns the two adapted models.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import peft_lora
import torch
from _lora_test_models import randomize_lora
from peft_core.testing import hf as kit_hf

config_json = kit_hf.read_adapter_config  # parsed, set-valued fields as sets, the writer's version dropped
tensors = kit_hf.saved_tensor_specs  # key -> (shape, dtype)


def hf_peft():
    """Hugging Face's `peft` 0.21.2, or skip the test saying why."""
    import pytest

    peft = kit_hf.hf_peft()
    if peft is None:
        pytest.skip(kit_hf.hf_peft_status())
    if peft.__version__ != "0.21.2":
        pytest.skip(f"needs Hugging Face peft 0.21.2, found {peft.__version__}")
    return peft


def load_in_hf(base, directory, **kwargs):
    hf_peft()
    return kit_hf.load_in_hf(base, directory, **kwargs)


def roundtrip(
    tmp_path,
    make_base: Callable[[], torch.nn.Module],
    run: Callable[[torch.nn.Module], torch.Tensor],
    config: dict[str, Any],
    randomize: Callable[[torch.nn.Module, int], None] = lambda m, seed: randomize_lora(m, seed=seed),
    compare_files: bool = True,
) -> tuple[Any, Any]:
    """Both directions for `config` (LoraConfig kwargs); returns (HF model, our model)."""
    peft = hf_peft()
    result = kit_hf.round_trip_adapters(
        make_base,
        {"default": peft.LoraConfig(**copy.deepcopy(config))},
        {"default": peft_lora.LoraConfig(**copy.deepcopy(config))},
        lambda model: run(model.eval()),
        tmp_path,
        randomize,
        compare_files=compare_files,
    )
    return result.hf_model, result.our_model
