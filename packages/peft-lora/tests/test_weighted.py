"""add_weighted_adapter: results against deltas computed by hand from the source adapters."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from _lora_test_models import conv_net, emb_mlp, tiny_gpt2
from peft_core import get_peft_model
from peft_lora import LoraConfig


def _model(make=emb_mlp, targets=("emb", "lin0", "lin1"), ranks=(2, 3), alphas=(4, 6)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(
            make(), LoraConfig(r=ranks[0], lora_alpha=alphas[0], target_modules=list(targets), init_lora_weights=False)
        )
        model.add_adapter(
            "b", LoraConfig(r=ranks[1], lora_alpha=alphas[1], target_modules=list(targets), init_lora_weights=False)
        )
    return model


def _layers(model):
    return [m for m in model.base_model.tuner_layers()]


def _delta(layer, name):
    return layer.get_delta_weight(name).detach()


@pytest.mark.parametrize(
    "make, targets",
    [(emb_mlp, ("emb", "lin0", "lin1")), (tiny_gpt2, ("c_attn",)), (conv_net, ("conv2d", "pointwise", "head"))],
)
def test_cat_is_exact(make, targets):
    model = _model(make, targets)
    model.add_weighted_adapter(["default", "b"], [0.7, -1.3], "mix", combination_type="cat")
    config = model.peft_config["mix"]
    assert (config.r, config.lora_alpha, config.use_rslora) == (5, 5, False)
    for layer in _layers(model):
        expected = 0.7 * _delta(layer, "default") - 1.3 * _delta(layer, "b")
        torch.testing.assert_close(_delta(layer, "mix"), expected, atol=1e-5, rtol=1e-5)
        assert layer.scaling["mix"] == 1.0


@pytest.mark.parametrize(
    "make, targets", [(emb_mlp, ("emb", "lin0", "lin1")), (tiny_gpt2, ("c_attn",)), (conv_net, ("conv2d", "pointwise"))]
)
def test_svd_with_full_rank_is_exact_and_truncates_otherwise(make, targets):
    model = _model(make, targets)
    model.add_weighted_adapter(["default", "b"], [0.5, 2.0], "full", combination_type="svd", svd_rank=5)
    model.add_weighted_adapter(["default", "b"], [0.5, 2.0], "low", combination_type="svd", svd_rank=1)
    for layer in _layers(model):
        expected = 0.5 * _delta(layer, "default") + 2.0 * _delta(layer, "b")
        torch.testing.assert_close(_delta(layer, "full"), expected, atol=1e-4, rtol=1e-4)
        flat = expected.flatten(1) if expected.dim() > 2 else expected
        low = _delta(layer, "low")
        low = low.flatten(1) if low.dim() > 2 else low
        assert torch.linalg.matrix_rank(low) <= 1
        # the rank-1 truncation is the best rank-1 approximation: its error is the tail of the spectrum
        s = torch.linalg.svdvals(flat)
        torch.testing.assert_close(torch.linalg.norm(flat - low), torch.linalg.norm(s[1:]), atol=1e-4, rtol=1e-3)


def test_svd_default_rank_is_the_largest():
    model = _model()
    model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "mix")  # svd is the default
    assert model.peft_config["mix"].r == 3


def test_linear_combines_a_and_b_separately():
    model = _model(ranks=(2, 2), alphas=(4, 8))
    w = [0.6, -0.4]
    model.add_weighted_adapter(["default", "b"], w, "mix", combination_type="linear")
    for layer in _layers(model):
        fa = [layer.lora_A[n].weight if n in layer.lora_A else layer.lora_embedding_A[n] for n in ("default", "b")]
        fb = [layer.lora_B[n].weight if n in layer.lora_B else layer.lora_embedding_B[n] for n in ("default", "b")]
        ws = [wi * layer.scaling[n] for wi, n in zip(w, ("default", "b"))]
        a = sum(math.copysign(math.sqrt(abs(x)), x) * f for x, f in zip(ws, fa))
        b = sum(math.sqrt(abs(x)) * f for x, f in zip(ws, fb))
        got_a = layer.lora_A["mix"].weight if "mix" in layer.lora_A else layer.lora_embedding_A["mix"]
        got_b = layer.lora_B["mix"].weight if "mix" in layer.lora_B else layer.lora_embedding_B["mix"]
        torch.testing.assert_close(got_a, a)
        torch.testing.assert_close(got_b, b)


def test_single_adapter_linear_reproduces_it():
    model = _model()
    model.add_weighted_adapter(["b"], [1.0], "single", combination_type="svd")  # one adapter: always linear
    for layer in _layers(model):
        torch.testing.assert_close(_delta(layer, "single"), _delta(layer, "b"), atol=1e-6, rtol=1e-5)


def test_pruning_types_run_and_need_density():
    model = _model(ranks=(2, 2))
    with pytest.raises(ValueError, match="needs `density`"):
        model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "t", combination_type="ties")
    assert "t" not in model.peft_config
    for i, kind in enumerate(
        ["ties", "dare_linear", "dare_ties", "magnitude_prune", "ties_svd", "magnitude_prune_svd"]
    ):
        model.add_weighted_adapter(["default", "b"], [1.0, 0.5], f"m{i}", combination_type=kind, density=0.5)
        for layer in _layers(model):
            assert torch.isfinite(_delta(layer, f"m{i}")).all()


def test_new_adapter_is_inactive_and_saved_like_any_other(tmp_path):
    model = _model()
    model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "mix", combination_type="cat")
    assert model.active_adapter == "default"
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".mix" in n)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "mix" / "adapter_model.safetensors").is_file()


def test_errors():
    model = _model()
    with pytest.raises(ValueError, match="same r value"):
        model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "x", combination_type="linear")
    with pytest.raises(ValueError, match="does not exist"):
        model.add_weighted_adapter(["default", "nope"], [1.0, 1.0], "x")
    with pytest.raises(ValueError, match="one weight per adapter"):
        model.add_weighted_adapter(["default", "b"], [1.0], "x")
    with pytest.raises(ValueError, match="Invalid combination_type"):
        model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "x", combination_type="average")
    model.add_adapter("dora", LoraConfig(r=2, target_modules=["lin0"], use_dora=True))
    with pytest.raises(ValueError, match="DoRA"):
        model.add_weighted_adapter(["default", "dora"], [1.0, 1.0], "x", combination_type="cat")
    assert "x" not in model.peft_config
    with pytest.warns(UserWarning, match="already exists"):
        model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "b")


def test_modules_to_save_copy_is_carried_over():
    base = emb_mlp()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["lin0"], modules_to_save=["head"]))
    model.add_adapter("b", LoraConfig(r=2, target_modules=["lin1"]))
    with torch.no_grad():
        model.base_model.model.head.modules_to_save["default"].weight.add_(1.0)
    model.add_weighted_adapter(["default", "b"], [1.0, 1.0], "mix", combination_type="cat")
    head = model.base_model.model.head
    assert torch.equal(head.modules_to_save["mix"].weight, head.modules_to_save["default"].weight)
