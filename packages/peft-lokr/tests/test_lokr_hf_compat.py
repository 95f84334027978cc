"""What the conformance kit's Hugging Face check (files both ways, see test_conformance.py) leaves
out, against Hugging Face PEFT 0.21.2: seeded initial values for the three init modes,
`factorization`, training-mode dropout draw for draw, and a multi-adapter folder saved by Hugging Face.
"""

from __future__ import annotations

import copy

import pytest
import torch

import peft_core
from peft_core.testing.hf import assert_hf_adapters_mix_here, assert_same_training_draws
from peft_core.testing.trained import as_if_trained
from peft_lokr import LoKrConfig, factorization

hf = pytest.importorskip("peft")
pytestmark = pytest.mark.compat

_fill_random = as_if_trained(".lokr_", scale=0.3)


def _build(get_model, config, factory, randomise, seed=21):
    torch.manual_seed(seed)
    model = get_model(factory(), config)
    if randomise:
        _fill_random(model, seed=4)
    return model.eval()


def _hf(factory, kwargs, randomise):
    return _build(hf.get_peft_model, hf.LoKrConfig(**copy.deepcopy(kwargs)), factory, randomise)


@pytest.mark.parametrize("init", [True, False, "lycoris"])
def test_seeded_initial_factors_equal_hf(kronnet_factory, kron_targets, init):
    kwargs = dict(r=1, alpha=2, decompose_both=True, target_modules=kron_targets, init_weights=init)
    theirs = hf.get_peft_model_state_dict(_hf(kronnet_factory, kwargs, False))
    torch.manual_seed(21)
    ours = peft_core.get_peft_model_state_dict(peft_core.get_peft_model(kronnet_factory(), LoKrConfig(**kwargs)))
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


def test_factorization_equals_hf():
    from peft.tuners.lokr.layer import factorization as hf_factorization

    for n in range(1, 260):
        for f in (-7, -1, 0, 1, 2, 3, 4, 5, 8, 16, 64, 300):
            assert factorization(n, f) == hf_factorization(n, f), (n, f)


@pytest.mark.parametrize("rescale", [False, True])
def test_training_mode_dropout_draws_match_hf(kronnet_factory, kron_targets, images, tmp_path, rescale):
    kwargs = dict(
        r=1, target_modules=kron_targets, init_weights=False, rank_dropout=0.5, module_dropout=0.25,
        rank_dropout_scale=rescale,
    )
    theirs = _hf(kronnet_factory, kwargs, False)
    theirs.save_pretrained(tmp_path)
    ours = peft_core.PeftModel.from_pretrained(kronnet_factory(), tmp_path)
    outs = assert_same_training_draws(ours, theirs, images)
    assert not torch.equal(outs[0], outs[1])  # dropout really varies between draws


def test_several_adapters_saved_by_hf_load_here(kronnet_factory, kron_targets, images, tmp_path):
    torch.manual_seed(21)
    configs = {
        "default": hf.LoKrConfig(r=1, target_modules=kron_targets, init_weights=False),
        "extra": hf.LoKrConfig(r=2, alpha=5, target_modules=["lin", "point"], init_weights=False),
    }
    assert_hf_adapters_mix_here(kronnet_factory, configs, images, ["extra", "default", "__base__"], tmp_path)
