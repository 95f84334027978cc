"""What the conformance kit's Hugging Face check (files both ways, see test_conformance.py) leaves
out, against Hugging Face PEFT 0.21.2: `merge_and_unload` hands back the same model as Hugging Face's
(the tuned copies in place of the originals, the base model's keys)."""

from __future__ import annotations

import copy

import peft
import pytest
import torch

import peft_core
from peft_core.testing import output_of
from peft_ln_tuning import LNTuningConfig

pytestmark = pytest.mark.compat


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_merged_model_equals_hf(fixture, request, randomize, input_ids):
    base = request.getfixturevalue(fixture)
    merged = {}
    for lib, get_peft_model, config in (
        ("hf", peft.get_peft_model, peft.LNTuningConfig(task_type="CAUSAL_LM")),
        ("ours", peft_core.get_peft_model, LNTuningConfig(task_type="CAUSAL_LM")),
    ):
        model = get_peft_model(copy.deepcopy(base), config)
        randomize(model)
        merged[lib] = model.merge_and_unload().eval()
    hf_state, our_state = merged["hf"].state_dict(), merged["ours"].state_dict()
    assert hf_state.keys() == our_state.keys() == base.state_dict().keys()
    for key in hf_state:
        assert torch.equal(hf_state[key], our_state[key]), key
    with torch.no_grad():
        assert torch.equal(output_of(merged["hf"](input_ids)), output_of(merged["ours"](input_ids)))
