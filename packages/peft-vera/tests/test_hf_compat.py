"""What the conformance kit's Hugging Face check (files both ways, see test_conformance.py) leaves
out, against Hugging Face PEFT 0.21.2: seeded random init and projections, and two adapters both ways
(Hugging Face gives a second adapter the first one's projections; the same key, rank and targets
make them equal)."""

from __future__ import annotations

import copy
import os
import tempfile

import peft
import pytest
import torch

import peft_core
from peft_core.testing import output_of
from peft_vera import VeraConfig

pytestmark = pytest.mark.compat


def test_seeded_random_init_and_projections_match_hf(tiny_llama, input_ids):
    kwargs = {"r": 5, "task_type": "CAUSAL_LM", "init_weights": False, "projection_prng_key": 123}
    torch.manual_seed(11)
    hf = peft.get_peft_model(copy.deepcopy(tiny_llama), peft.VeraConfig(**kwargs))
    torch.manual_seed(11)
    ours = peft_core.get_peft_model(copy.deepcopy(tiny_llama), VeraConfig(**kwargs))
    assert torch.equal(hf.base_model.vera_A["default"], ours.base_model.vera_A["default"])
    assert torch.equal(hf.base_model.vera_B["default"], ours.base_model.vera_B["default"])
    assert torch.equal(output_of(hf(input_ids)), output_of(ours(input_ids)))


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
                expected[lib, name] = output_of(model(x))
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
            assert torch.equal(output_of(loaded_ours(x)), expected["hf", name])
            assert torch.equal(output_of(loaded_hf(x)), expected["ours", name])
