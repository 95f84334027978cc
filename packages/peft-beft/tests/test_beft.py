"""What is particular to BEFT: the bias math (against an independent computation and Hugging Face
PEFT), the refusal to merge into bias-less layers, and unsupported layers. The conformance kit
checks the rest (see test_conformance.py)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from peft_core import ConfigError, UnsupportedOperationError, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_peft

from peft_beft import BeftConfig, BeftLinear

torch.set_num_threads(1)



def test_forward_adds_the_sum_of_active_vectors():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), BeftConfig(target_modules=["lin1"], init_weights=False))
    model.add_adapter("b", BeftConfig(target_modules=["lin1"], init_weights=False))
    layer = model.base_model.model.lin1
    assert isinstance(layer, BeftLinear) and layer.beft_bias["default"].shape == (1, 32)
    model.base_model.set_adapter(["default", "b"])
    x = torch.randn(5, 32)
    expected = x @ base.lin1.weight.T + base.lin1.bias + layer.beft_bias["default"][0] + layer.beft_bias["b"][0]
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected)


def test_merge_folds_the_vector_into_the_bias():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), BeftConfig(target_modules=["lin0"], init_weights=False))
    vector = model.base_model.model.lin0.beft_bias["default"].detach().clone()
    merged = model.merge_and_unload()
    assert torch.equal(merged.lin0.weight, base.lin0.weight)
    torch.testing.assert_close(merged.lin0.bias, base.lin0.bias + vector[0])


def test_merge_into_a_layer_without_bias_is_refused_and_changes_nothing():
    base = models.LLAMA.build()  # no biases in Llama's projections
    with pytest.warns(UserWarning, match="no bias term"):
        model = get_peft_model(base, BeftConfig(task_type="CAUSAL_LM", init_weights=False)).eval()
    inputs = models.LLAMA.make_inputs()
    with torch.no_grad():
        before = model(**inputs).logits
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    for call in (model.merge_adapter, model.merge_and_unload):
        with pytest.raises(UnsupportedOperationError, match="no bias"):
            call()
    assert not any(layer.merged for layer in model.modules() if isinstance(layer, BeftLinear))
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)


def test_non_linear_targets_are_refused_and_leave_the_model_untouched():
    base = models.GPT2.build()  # transformers Conv1D layers
    with pytest.raises(ConfigError, match="not supported by BEFT; supported: torch.nn.Linear only"):
        get_peft_model(base, BeftConfig(target_modules=["c_attn"]))
    assert type(base.transformer.h[0].attn.c_attn).__name__ == "Conv1D"


def test_merged_bias_matches_hugging_face():
    peft = hf_peft()
    if peft is None:
        pytest.skip("Hugging Face PEFT is not installed")
    base = models.MLP.build()
    torch.manual_seed(3)
    ours = get_peft_model(copy.deepcopy(base), BeftConfig(target_modules=["lin0", "lin2"], init_weights=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(copy.deepcopy(base), peft.BeftConfig(target_modules=["lin0", "lin2"]))
    theirs.load_state_dict(
        {k: v for k, v in ours.state_dict().items() if "beft_bias" in k}, strict=False
    )
    x = torch.randn(3, 16)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
        ours_merged, theirs_merged = ours.merge_and_unload(), theirs.merge_and_unload()
        assert torch.equal(ours_merged.lin0.bias, theirs_merged.lin0.bias)
        assert torch.equal(ours_merged.lin2.bias, theirs_merged.lin2.bias)
