"""File compatibility with Hugging Face PEFT 0.21.2, both directions, with non-trivially tuned norm copies."""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from typing import Any, Callable

import peft
import pytest
import torch

import peft_core
from peft_ln_tuning import LNTuningConfig

pytestmark = pytest.mark.compat

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-defaults": ("tiny_llama", {"task_type": "CAUSAL_LM"}),
    "llama-regex": ("tiny_llama", {"target_modules": r"model\.(norm|layers\.1\.input_layernorm)", "task_type": None}),
    "gpt2-defaults": ("tiny_gpt2", {"task_type": "CAUSAL_LM"}),
    # Targeted embeddings also save their base weight (`<emb>.base_layer.weight`), as in HF.
    "llama-embeddings": ("tiny_llama", {"target_modules": ["embed_tokens", "lm_head", "norm"]}),
    "mlp-extras": (
        "mlp",
        {"target_modules": ["norm0", "norm1"], "exclude_modules": ["norm1"], "modules_to_save": ["head"]},
    ),
}


def _inputs(kind: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    if kind in ("tiny_llama", "tiny_gpt2"):
        return torch.randint(0, 128, (3, 7), generator=gen)
    return torch.randn(4, 8, generator=gen)


def _out(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return out.logits if hasattr(out, "logits") else out


def _perturb_modules_to_save(model: torch.nn.Module) -> None:
    """Also moves the base biases, so saved `bias` extras carry information."""
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if ".modules_to_save.default." in name or (name.endswith("bias") and param.requires_grad):
                param.add_(0.25)


def _build(lib: str, base: torch.nn.Module, kwargs: dict[str, Any], randomize: Callable) -> torch.nn.Module:
    if lib == "hf":
        model = peft.get_peft_model(base, peft.LNTuningConfig(**kwargs))
    else:
        model = peft_core.get_peft_model(base, LNTuningConfig(**kwargs))
    randomize(model)
    _perturb_modules_to_save(model)
    return model.eval()


def _load(lib: str, base: torch.nn.Module, path: str) -> tuple[torch.nn.Module, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(99)  # a different global RNG state: nothing may depend on it
        if lib == "hf":
            model = peft.PeftModel.from_pretrained(base, path)
        else:
            model = peft_core.PeftModel.from_pretrained(base, path)
    return model.eval(), [str(w.message) for w in caught]


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_directions(case, request, randomize, saved_config, saved_weights):
    fixture, kwargs = CASES[case]
    base = request.getfixturevalue(fixture)
    x = _inputs(fixture)
    with tempfile.TemporaryDirectory() as tmp:
        made = {}
        for lib in ("hf", "ours"):
            model = _build(lib, copy.deepcopy(base), kwargs, randomize)
            model.save_pretrained(os.path.join(tmp, lib))
            made[lib] = _out(model, x)
        # Same config and weights from the same user config give the same outputs in both libraries.
        assert torch.equal(made["hf"], made["ours"])
        # Same files: parsed config (sets as sets, writer version aside) and (key, dtype, shape).
        assert saved_config(os.path.join(tmp, "hf")) == saved_config(os.path.join(tmp, "ours"))
        assert saved_weights(os.path.join(tmp, "hf")) == saved_weights(os.path.join(tmp, "ours"))
        # HF -> us and us -> HF.
        ours_from_hf, _ = _load("ours", copy.deepcopy(base), os.path.join(tmp, "hf"))
        assert torch.equal(_out(ours_from_hf, x), made["hf"])
        hf_from_ours, messages = _load("hf", copy.deepcopy(base), os.path.join(tmp, "ours"))
        assert not [m for m in messages if "Unexpected keyword arguments" in m]
        assert torch.equal(_out(hf_from_ours, x), made["ours"])


@pytest.mark.parametrize("case", ["llama-defaults", "gpt2-defaults"])
def test_merged_model_equals_hf(case, request, randomize):
    fixture, kwargs = CASES[case]
    base = request.getfixturevalue(fixture)
    merged_hf = _build("hf", copy.deepcopy(base), kwargs, randomize).merge_and_unload()
    merged_ours = _build("ours", copy.deepcopy(base), kwargs, randomize).merge_and_unload()
    hf_state, our_state = merged_hf.state_dict(), merged_ours.state_dict()
    assert hf_state.keys() == our_state.keys() == base.state_dict().keys()
    for key in hf_state:
        assert torch.equal(hf_state[key], our_state[key]), key
    x = _inputs(fixture)
    assert torch.equal(_out(merged_hf, x), _out(merged_ours, x))


def test_several_adapters_both_directions(tiny_llama, input_ids, randomize):
    # Same targets: in HF a layer wrapped for only one adapter fails (KeyError) while another is active.
    first = {"target_modules": ["input_layernorm", "norm"]}
    second = {"target_modules": ["input_layernorm", "norm"]}
    x = input_ids
    with tempfile.TemporaryDirectory() as tmp:
        hf = peft.get_peft_model(copy.deepcopy(tiny_llama), peft.LNTuningConfig(**first))
        hf.add_adapter("other", peft.LNTuningConfig(**second))
        ours = peft_core.get_peft_model(copy.deepcopy(tiny_llama), LNTuningConfig(**first))
        ours.add_adapter("other", LNTuningConfig(**second))
        expected = {}
        for lib, model in (("hf", hf), ("ours", ours)):
            randomize(model)
            model.eval()
            for name in ("default", "other"):
                model.set_adapter(name)
                expected[lib, name] = _out(model, x)
            model.save_pretrained(os.path.join(tmp, lib))
        for name in ("default", "other"):
            assert torch.equal(expected["hf", name], expected["ours", name])
        loaded_ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(tiny_llama), os.path.join(tmp, "hf"))
        loaded_ours.load_adapter(os.path.join(tmp, "hf"), "other", subfolder="other")
        loaded_hf = peft.PeftModel.from_pretrained(copy.deepcopy(tiny_llama), os.path.join(tmp, "ours"))
        loaded_hf.load_adapter(os.path.join(tmp, "ours", "other"), "other")
        for name in ("default", "other"):
            loaded_ours.set_adapter(name)
            loaded_hf.set_adapter(name)
            assert torch.equal(_out(loaded_ours, x), expected["hf", name])
            assert torch.equal(_out(loaded_hf, x), expected["ours", name])
