"""What the conformance kit's Hugging Face check (files both ways, see test_conformance.py) leaves
out, against Hugging Face PEFT 0.21.2: seeded random init and projections, and two adapters both ways
(Hugging Face gives a second adapter the first one's projections; the same key, rank and targets
make them equal)."""

from __future__ import annotations

import copy

import peft
import pytest
import torch

import peft_core
from peft_core.testing import output_of
from peft_core.testing.hf import several_adapters_both_ways
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


def test_several_adapters_both_directions(tiny_llama, input_ids, randomize, tmp_path):
    # HF gives a second adapter the first one's projections; with the same key, rank and targets
    # that equals the projections we draw for it, so both libraries agree.
    first = {"r": 4, "target_modules": ["q_proj", "v_proj"], "projection_prng_key": 1}
    second = {"r": 4, "target_modules": ["q_proj", "v_proj"], "projection_prng_key": 1, "d_initial": 0.2}
    several_adapters_both_ways(
        lambda: copy.deepcopy(tiny_llama),
        {"default": VeraConfig(**first), "other": VeraConfig(**second)},
        {"default": peft.VeraConfig(**first), "other": peft.VeraConfig(**second)},
        lambda model: output_of(model(input_ids)),
        tmp_path,
        prepare=randomize,
    )
