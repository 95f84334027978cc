"""What is particular to FRoD: roles and block indices, the shared bases and sparse positions (as
Hugging Face PEFT builds them), the reconstruction `W = U diag(λ) Vᵀ`, the adapted forward (against an
independent computation), U following a loaded basis, half-precision bases, and outputs equal to HF's."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from peft_core import get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_peft

from peft_frod import FrodConfig, FrodLinear, block_index_of, category_of, sparse_positions
from peft_frod.bases import factor_weight

torch.set_num_threads(1)



def test_roles_and_block_indices():
    assert category_of("model.layers.3.self_attn.q_proj") == "self_attn_q_proj"
    assert category_of("encoder.layer.0.attention.output.dense") == "attention_output"
    assert category_of("encoder.layer.0.output.dense") == "output_dense"
    assert category_of("h.0.c_attn") == "c_attn" and category_of("lin0") == "lin0"
    assert block_index_of("model.layers.3.self_attn.q_proj", 9) == 3
    assert block_index_of("encoder.layer.11.attention.self.query", 9) == 11
    assert block_index_of("classifier.dense", 9) == 9


def test_sparse_positions_are_off_diagonal_and_seeded():
    gen = torch.Generator().manual_seed(0)
    pos = sparse_positions(8, 0.1, gen)
    assert pos.shape == (2, 6) and bool((pos[0] != pos[1]).all())
    assert sparse_positions(8, 0.001, torch.Generator()).shape == (2, 1)  # at least one for a positive rate
    assert sparse_positions(8, 0.0, torch.Generator()).shape == (2, 0)


def test_basis_reconstructs_the_weight_and_starts_as_a_no_op():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), FrodConfig(sparse_rate=0.05, progressbar=False, target_modules=["lin1", "lin2"]))
    for name in ("lin1", "lin2"):
        layer = getattr(model.base_model.model, name)
        assert isinstance(layer, FrodLinear)
        rebuilt = layer.adapted_weight("default", torch.device("cpu"), torch.float64)
        torch.testing.assert_close(rebuilt.float(), getattr(base, name).weight, atol=1e-5, rtol=1e-4)
    x = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x), atol=1e-5, rtol=1e-4)


def test_adapted_forward_uses_the_rebuilt_weight():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), FrodConfig(sparse_rate=0.1, progressbar=False, init_weights=False, target_modules=["lin1"]))
    layer = model.base_model.model.lin1
    tuner = model.base_model
    v = tuner.frod_V["lin1"]["default"]
    rows, cols = tuner.frod_s_indices["lin1"]["default"]
    s = torch.zeros(32, 32)
    s[rows, cols] = layer.frod_lambda_s_values["default"].detach()
    w = layer.frod_U["default"] @ (s + torch.diag(layer.frod_lambda_l["default"].detach())) @ v.T
    x = torch.randn(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), x @ w.T + base.lin1.bias, atol=1e-5, rtol=1e-5)
        layer.merge()
        torch.testing.assert_close(layer.get_base_layer().weight, w, atol=1e-5, rtol=1e-5)
        layer.unmerge()
    assert torch.equal(layer.get_base_layer().weight, base.lin1.weight)


def test_u_is_solved_again_for_a_loaded_basis():
    model = get_peft_model(models.MLP.build(), FrodConfig(sparse_rate=0.05, progressbar=False, target_modules=["lin1"]))
    layer = model.base_model.model.lin1
    basis = model.base_model.frod_V["lin1"]["default"]
    with torch.no_grad():
        basis.copy_(torch.linalg.qr(torch.randn(32, 32))[0])  # e.g. a file's basis
        layer(torch.randn(2, 32))  # U follows the new basis
    u, scale = factor_weight(basis, layer.get_base_layer().weight)
    assert torch.equal(layer.frod_U["default"], u)
    # with the λ that goes with that basis, W is reproduced
    torch.testing.assert_close(u @ torch.diag(scale) @ basis.T, layer.get_base_layer().weight, atol=1e-4, rtol=1e-4)


def test_half_precision_base():
    base = models.MLP.build().to(torch.bfloat16)
    model = get_peft_model(copy.deepcopy(base), FrodConfig(sparse_rate=0.05, progressbar=False, target_modules=["lin1", "lin2"]))
    layer = model.base_model.model.lin1
    assert layer.frod_lambda_l["default"].dtype == torch.float32  # autocast_adapter_dtype
    assert model.base_model.frod_V["lin1"]["default"].dtype == torch.float32
    x = torch.randn(3, 16, dtype=torch.bfloat16)
    with torch.no_grad():
        out = model(x)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), base(x).float(), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("model_name", ["mlp", "gpt2"])
def test_bases_and_outputs_match_hugging_face(model_name):
    peft = hf_peft()
    if peft is None:
        pytest.skip("Hugging Face PEFT is not installed")
    tiny = models.MLP if model_name == "mlp" else models.GPT2
    targets = ["lin0", "lin1", "lin2"] if model_name == "mlp" else ["c_attn", "c_fc"]
    kwargs = dict(sparse_rate=0.05, progressbar=False, target_modules=targets, init_weights=False)
    torch.manual_seed(2)
    ours = get_peft_model(tiny.build(), FrodConfig(**kwargs))
    torch.manual_seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(tiny.build(), peft.FrodConfig(**kwargs))
    mine, hf = ours.state_dict(), theirs.state_dict()
    shared = [k for k in hf if ".frod_" in k and "frod_U" not in k]
    assert all(torch.equal(mine[k], hf[k]) for k in shared) and len(shared) > 0
    inputs = tiny.make_inputs()
    with torch.no_grad():
        out_ours, out_theirs = ours.eval()(**inputs), theirs.eval()(**inputs)
    out_ours = getattr(out_ours, "logits", out_ours)
    out_theirs = getattr(out_theirs, "logits", out_theirs)
    assert torch.equal(out_ours, out_theirs)
