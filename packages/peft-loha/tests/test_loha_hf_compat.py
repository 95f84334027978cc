"""What the conformance kit's Hugging Face check (files both ways, see test_conformance.py) leaves
out, against Hugging Face PEFT 0.21.2: seeded initial values, training-mode dropout draws, and a
multi-adapter folder saved by Hugging Face."""

from __future__ import annotations

import copy

import pytest
import torch

import peft_core
from peft_core.testing.hf import assert_hf_adapters_mix_here, assert_same_training_draws
from peft_core.testing.trained import as_if_trained
from peft_loha import LoHaConfig

hf = pytest.importorskip("peft")
pytestmark = pytest.mark.compat


_randomise = as_if_trained(".hada_", scale=0.3)


def _hf_model(make, kwargs, randomise, seed=11):
    torch.manual_seed(seed)
    model = hf.get_peft_model(make(), hf.LoHaConfig(**copy.deepcopy(kwargs)))
    if randomise:
        _randomise(model, seed=5)
    return model.eval()


@pytest.mark.parametrize("effective", [False, True])
def test_seeded_initial_factors_equal_hf(make_convnet, conv_targets, effective):
    kwargs = dict(r=2, alpha=3, target_modules=conv_targets, use_effective_conv2d=effective)
    theirs = _hf_model(make_convnet, kwargs, False)
    torch.manual_seed(11)
    ours = peft_core.get_peft_model(make_convnet(), LoHaConfig(**kwargs))
    expected = hf.get_peft_model_state_dict(theirs)
    got = peft_core.get_peft_model_state_dict(ours)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_training_mode_dropout_draws_match_hf(make_convnet, conv_targets, images, tmp_path):
    kwargs = dict(r=2, alpha=4, target_modules=conv_targets, init_weights=False, rank_dropout=0.4, module_dropout=0.3)
    theirs = _hf_model(make_convnet, kwargs, False)
    theirs.save_pretrained(tmp_path)
    ours = peft_core.PeftModel.from_pretrained(make_convnet(), tmp_path)
    assert_same_training_draws(ours, theirs, images)


def test_several_adapters_saved_by_hf_load_here(make_convnet, conv_targets, images, tmp_path):
    torch.manual_seed(11)
    configs = {
        "default": hf.LoHaConfig(r=2, target_modules=conv_targets, init_weights=False),
        "second": hf.LoHaConfig(r=3, alpha=2, target_modules=["lin", "conv2"], init_weights=False),
    }
    # then a mixed batch: each row as computed by HF with that row's adapter alone
    assert_hf_adapters_mix_here(make_convnet, configs, images, ["second", "__base__", "default"], tmp_path)
