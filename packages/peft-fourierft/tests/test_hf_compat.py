"""What the conformance kit's Hugging Face check (files both ways, see test_conformance.py) leaves
out, against Hugging Face PEFT 0.21.2: the seeded random spectrum and frequency positions."""

from __future__ import annotations

import copy

import peft
import pytest
import torch

import peft_core
from peft_core.testing import output_of
from peft_fourierft import FourierFTConfig

pytestmark = pytest.mark.compat


def test_seeded_random_init_and_indices_match_hf(tiny_llama, input_ids):
    kwargs = {"n_frequency": 25, "task_type": "CAUSAL_LM", "random_loc_seed": 42}  # default init: randn spectrum
    torch.manual_seed(11)
    hf = peft.get_peft_model(copy.deepcopy(tiny_llama), peft.FourierFTConfig(**kwargs))
    torch.manual_seed(11)
    ours = peft_core.get_peft_model(copy.deepcopy(tiny_llama), FourierFTConfig(**kwargs))
    hf_v = hf.base_model.model.model.layers[0].self_attn.v_proj
    our_v = ours.base_model.model.model.layers[0].self_attn.v_proj
    assert torch.equal(hf_v.indices["default"], our_v.fourierft_indices["default"])
    assert torch.equal(hf_v.get_delta_weight("default"), our_v.get_delta_weight("default"))
    assert torch.equal(output_of(hf(input_ids)), output_of(ours(input_ids)))
