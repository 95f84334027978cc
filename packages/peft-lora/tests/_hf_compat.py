"""Round trips against Hugging Face PEFT 0.21.2 for the newer LoRA options (put on sys.path by conftest.py).

The file helpers are the conformance kit's (`peft_core.testing.hf`); `roundtrip` adds what these tests
need on top of the kit's `both_ways`: LoRA kwargs given once for both libraries, a check that the adapter
is not trivial, and the two adapted models returned for further checks.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable

import peft_core
import peft_lora
import torch
from _lora_test_models import randomize_lora
from peft_core.testing import hf as kit_hf
from peft_core.testing.hf import compare_saved

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
        assert compare_saved(our_dir, hf_dir) == []
    return hf_model, our_model
