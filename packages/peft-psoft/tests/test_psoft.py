"""What is particular to PSOFT: the frozen principal subspace, the Cayley rotation (exact and series),
the update `scaling · B (R - I) A`, outputs equal to Hugging Face PEFT's, and the refusals; each
against an independent computation. The conformance kit checks the rest (see test_conformance.py)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from peft_core import ConfigError, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_peft

from peft_psoft import PsoftConfig, PsoftLinear, subspace

torch.set_num_threads(1)



@pytest.mark.parametrize("init", ["psoft_init", "pissa_init"])
def test_subspace_is_the_scaled_rank_r_truncation(init):
    w = torch.randn(12, 9)
    a, b = subspace(w, 4, 2.0, init, "full", 10, 0)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    torch.testing.assert_close(2.0 * b @ a, u[:, :4] @ torch.diag(s[:4]) @ vh[:4], atol=1e-5, rtol=1e-5)
    if init == "psoft_init":
        torch.testing.assert_close(a @ a.T, torch.eye(4), atol=1e-5, rtol=1e-5)


def test_lowrank_subspace_is_seeded_and_leaves_the_global_rng_alone():
    w = torch.randn(20, 16)
    state = torch.random.get_rng_state()
    first = subspace(w, 3, 1.0, "psoft_init", "lowrank", 2, 7)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(first, subspace(w, 3, 1.0, "psoft_init", "lowrank", 2, 7)))


def _layer(**kwargs):
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), PsoftConfig(target_modules=["lin1"], init_weights=False, **kwargs))
    layer = model.base_model.model.lin1
    assert isinstance(layer, PsoftLinear)
    return base.lin1, layer


def test_forward_is_base_plus_scaled_rotation_in_the_subspace():
    base, layer = _layer(r=4, psoft_alpha=8)
    rot = layer.psoft_R["default"]
    with torch.no_grad():
        rot.vector_a.mul_(1.5)
        rot.vector_b.add_(0.2)
        q = torch.zeros(4, 4)
        q[torch.triu_indices(4, 4, 1).unbind()] = rot.weight
        q = q - q.T
        cayley = (torch.eye(4) + q) @ torch.linalg.inv(torch.eye(4) - q)
        torch.testing.assert_close(cayley @ cayley.T, torch.eye(4), atol=1e-5, rtol=1e-5)  # a rotation
        r = rot.vector_b[:, None] * cayley * rot.vector_a[None, :]
        a, b = layer.psoft_A["default"], layer.psoft_B["default"]
        delta = 2.0 * b @ (r - torch.eye(4)) @ a  # psoft_alpha / r = 2
        x = torch.randn(3, 32)
        torch.testing.assert_close(layer(x), base(x) + x @ delta.T, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer.get_delta_weight("default"), delta, atol=1e-5, rtol=1e-5)


def test_cayley_neumann_series_approximates_the_exact_rotation():
    _, exact = _layer(r=4)
    _, series = _layer(r=4, use_cayley_neumann=True, num_cayley_neumann_terms=12)
    with torch.no_grad():
        series.psoft_R["default"].weight.copy_(exact.psoft_R["default"].weight)
        torch.testing.assert_close(series.psoft_R["default"].matrix(), exact.psoft_R["default"].matrix(), atol=1e-3, rtol=1e-3)


def test_free_matrix_without_orthogonality():
    _, layer = _layer(r=3, psoft_orth=False, psoft_mag_a=False, psoft_mag_b=False)
    rot = layer.psoft_R["default"]
    assert rot.weight.shape == (3, 3) and rot.vector_a is None and rot.vector_b is None
    assert torch.equal(rot.matrix(), rot.weight)


def test_rank_above_the_layer_size_and_other_layers_are_refused():
    with pytest.raises(ConfigError, match="must not exceed"):
        get_peft_model(models.MLP.build(), PsoftConfig(r=20, target_modules=["lin0"]))
    base = models.GPT2.build()
    with pytest.raises(ConfigError, match="not supported by PSOFT; supported: torch.nn.Linear only"):
        get_peft_model(base, PsoftConfig(r=2, target_modules=["c_attn"]))
    assert type(base.transformer.h[0].attn.c_attn).__name__ == "Conv1D"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(r=4),
        dict(r=3, ab_svd_init="pissa_init", psoft_orth=False),
        dict(r=4, psoft_svd="lowrank", psoft_svd_lowrank_niter=3, random_seed=5, use_cayley_neumann=True, cayley_neumann_eps=0.5),
    ],
)
def test_outputs_and_merges_match_hugging_face(kwargs):
    peft = hf_peft()
    if peft is None:
        pytest.skip("Hugging Face PEFT is not installed")
    base = models.MLP.build()
    config = dict(target_modules=["lin0", "lin1"], init_weights=False, **kwargs)
    ours = get_peft_model(copy.deepcopy(base), PsoftConfig(**config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(copy.deepcopy(base), peft.PsoftConfig(**config))
    for name in ("lin0", "lin1"):
        ours_layer, theirs_layer = getattr(ours.base_model.model, name), getattr(theirs.base_model.model, name)
        a, b = theirs_layer._get_psoft_ab_cache_buffers("default")
        assert torch.equal(ours_layer.psoft_A["default"], a) and torch.equal(ours_layer.psoft_B["default"], b)
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if ".psoft_R." in k}, strict=False)
    x = torch.randn(4, 16)
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), theirs.eval()(x))
        assert torch.equal(ours.merge_and_unload().lin1.weight, theirs.merge_and_unload().lin1.weight)
