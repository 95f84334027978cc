"""File compatibility with Hugging Face PEFT 0.21.2, both directions, with non-trivial VeRA vectors."""

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
from peft_vera import VeraConfig

pytestmark = pytest.mark.compat

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-save-projection": (
        "tiny_llama",
        {"r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"], "projection_prng_key": 5, "task_type": "CAUSAL_LM"},
    ),
    "llama-prng-only": (
        "tiny_llama",
        {"r": 6, "target_modules": ["k_proj", "up_proj"], "save_projection": False, "projection_prng_key": 3},
    ),
    "llama-defaults": ("tiny_llama", {"r": 8, "task_type": "CAUSAL_LM"}),
    "gpt2-conv1d": ("tiny_gpt2", {"r": 4, "target_modules": ["c_attn", "mlp.c_proj"], "task_type": "CAUSAL_LM"}),
    "mlp-bias-extras": (
        "mlp",
        {"r": 3, "target_modules": ["lin0", "lin1"], "bias": "vera_only", "modules_to_save": ["lin2"], "d_initial": 0.3},
    ),
    "mlp-bias-all": (
        "mlp",
        {"r": 2, "target_modules": ["lin1"], "bias": "all", "vera_dropout": 0.1, "modules_to_save": ["lin2"]},
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
        model = peft.get_peft_model(base, peft.VeraConfig(**kwargs))
    else:
        model = peft_core.get_peft_model(base, VeraConfig(**kwargs))
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


@pytest.mark.parametrize("case", ["llama-save-projection", "gpt2-conv1d"])
def test_merged_weights_equal_hf(case, request, randomize):
    fixture, kwargs = CASES[case]
    base = request.getfixturevalue(fixture)
    merged_hf = _build("hf", copy.deepcopy(base), kwargs, randomize).merge_and_unload()
    merged_ours = _build("ours", copy.deepcopy(base), kwargs, randomize).merge_and_unload()
    hf_state, our_state = merged_hf.state_dict(), merged_ours.state_dict()
    assert hf_state.keys() == our_state.keys()
    for key in hf_state:
        assert torch.equal(hf_state[key], our_state[key]), key


def test_seeded_random_init_and_projections_match_hf(tiny_llama, input_ids):
    kwargs = {"r": 5, "task_type": "CAUSAL_LM", "init_weights": False, "projection_prng_key": 123}
    torch.manual_seed(11)
    hf = peft.get_peft_model(copy.deepcopy(tiny_llama), peft.VeraConfig(**kwargs))
    torch.manual_seed(11)
    ours = peft_core.get_peft_model(copy.deepcopy(tiny_llama), VeraConfig(**kwargs))
    assert torch.equal(hf.base_model.vera_A["default"], ours.base_model.vera_A["default"])
    assert torch.equal(hf.base_model.vera_B["default"], ours.base_model.vera_B["default"])
    assert torch.equal(_out(hf, input_ids), _out(ours, input_ids))


def test_several_adapters_both_directions(tiny_llama, input_ids, randomize):
    # HF gives a second adapter the first one's projections; with the same key, rank and targets
    # that equals the projections we draw for it, so both libraries agree.
    first = {"r": 4, "target_modules": ["q_proj", "v_proj"], "projection_prng_key": 1}
    second = {"r": 4, "target_modules": ["q_proj", "v_proj"], "projection_prng_key": 1, "d_initial": 0.2}
    x = input_ids
    with tempfile.TemporaryDirectory() as tmp:
        hf = peft.get_peft_model(copy.deepcopy(tiny_llama), peft.VeraConfig(**first))
        hf.add_adapter("other", peft.VeraConfig(**second))
        ours = peft_core.get_peft_model(copy.deepcopy(tiny_llama), VeraConfig(**first))
        ours.add_adapter("other", VeraConfig(**second))
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
