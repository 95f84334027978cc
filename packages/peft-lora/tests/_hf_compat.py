"""Round trips against Hugging Face PEFT 0.21.2 for the newer LoRA options (put on sys.path by conftest.py).

`roundtrip` adapts the same base with the same config in both libraries, makes each adapter
non-trivial, saves it, loads it with the other library onto a fresh copy of the base and requires
bit-identical outputs; the two libraries' files must have the same keys, shapes and dtypes and the
same config (as parsed JSON, set-valued fields compared as sets).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from typing import Any, Callable

import peft_core
import peft_lora
import torch
from _lora_test_models import randomize_lora
from safetensors.torch import load_file

SET_FIELDS = ("target_modules", "exclude_modules", "modules_to_save", "target_parameters")


def hf_peft():
    import pytest

    peft = pytest.importorskip("peft")
    if peft.__version__ != "0.21.2":
        pytest.skip(f"needs Hugging Face peft 0.21.2, found {peft.__version__}")
    return peft


def config_json(directory) -> dict:
    with open(os.path.join(directory, "adapter_config.json"), encoding="utf-8") as fh:
        data = json.load(fh)
    for key in SET_FIELDS:
        if isinstance(data.get(key), list):
            data[key] = sorted(set(data[key]))
    data.pop("peft_version")
    return data


def tensors(directory) -> dict:
    state = load_file(os.path.join(directory, "adapter_model.safetensors"))
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


def load_in_hf(base, directory, **kwargs):
    peft = hf_peft()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = peft.PeftModel.from_pretrained(base, directory, **kwargs)
    unexpected = [str(w.message) for w in caught if "Unexpected keyword" in str(w.message)]
    assert not unexpected, unexpected
    return model.eval()


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.equal(actual, expected), (actual - expected).abs().max()


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
    base = make_base()
    baseline = run(copy.deepcopy(base).eval())

    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**copy.deepcopy(config)))
    randomize(hf_model, 1)
    hf_dir = tmp_path / "hf"
    hf_model.save_pretrained(hf_dir)
    expected = run(hf_model.eval())
    assert not torch.equal(expected, baseline), "the adapter is trivial; the test would prove nothing"
    ours = peft_core.PeftModel.from_pretrained(make_base(), hf_dir)
    assert_same(run(ours), expected)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        our_model = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(**copy.deepcopy(config)))
    randomize(our_model, 2)
    our_dir = tmp_path / "ours"
    our_model.save_pretrained(our_dir)
    expected = run(our_model.eval())
    hf_loaded = load_in_hf(make_base(), our_dir)
    assert_same(run(hf_loaded), expected)

    if compare_files:
        assert config_json(our_dir) == config_json(hf_dir)
        assert tensors(our_dir) == tensors(hf_dir)
    return hf_model, our_model
