"""What is particular to OSF: the SVD split, gradients orthogonal to the frozen subspace, the effective
rank rules, what is saved, and the comparisons with Hugging Face PEFT. The conformance kit checks the
rest (test_conformance.py)."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from peft_core import ConfigError, PeftModel, get_peft_method, get_peft_model
from peft_core.testing import hf, models

from peft_osf import OSFConfig, OSFLinear, resolve_rank, split_weight

torch.set_num_threads(1)


class Shapes(nn.Module):
    """A tall (12->20), a wide (20->12) and a square (12->12) linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.tall = nn.Linear(12, 20)
        self.wide = nn.Linear(20, 12)
        self.square = nn.Linear(12, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.square(self.wide(torch.tanh(self.tall(x))))


def _shapes(seed: int = 0) -> Shapes:
    torch.manual_seed(seed)
    return Shapes()


def _adapt(base: nn.Module, config: OSFConfig):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(base, config)


def test_registered_with_its_entry_point():
    from importlib.metadata import entry_points

    method = get_peft_method("osf")
    assert method.config_cls is OSFConfig and method.prefix == "osf_"
    assert any(ep.name == "osf" for ep in entry_points(group="peft.methods"))


def test_the_split_rebuilds_the_weight_and_a_fresh_adapter_adds_nothing():
    weight = torch.randn(20, 12, generator=torch.Generator().manual_seed(0))
    split = split_weight(weight, 5)
    u, s, vt = torch.linalg.svd(weight, full_matrices=False)
    high = split.u_high @ torch.diag(s[:5]) @ split.v_high
    low = split.u_low @ torch.diag(split.s_low) @ split.v_low
    torch.testing.assert_close(high + low, weight, rtol=0, atol=1e-5)
    assert split.u_low.shape == (20, 7) and split.v_low.shape == (7, 12)
    model = _adapt(_shapes(), OSFConfig(effective_rank=5, target_modules=["tall", "wide", "square"]))
    for name in ("tall", "wide", "square"):
        layer = getattr(model.base_model.model, name)
        assert isinstance(layer, OSFLinear)
        assert torch.count_nonzero(layer.get_delta_weight("default")) == 0
    x = torch.randn(3, 12)
    with torch.no_grad():  # the factored forward [U S, -U₀ S₀][V; V₀] cancels only up to rounding
        torch.testing.assert_close(model(x), _shapes()(x), rtol=0, atol=1e-6)


def test_only_the_non_square_side_keeps_its_high_part():
    model = _adapt(_shapes(), OSFConfig(effective_rank=4, target_modules=["tall", "wide", "square"]))
    m = model.base_model.model
    assert "default" in m.tall.osf_U_high and "default" not in m.tall.osf_V_high  # U is 20 x 12: not square
    assert "default" in m.wide.osf_V_high and "default" not in m.wide.osf_U_high
    assert "default" not in m.square.osf_U_high and "default" not in m.square.osf_V_high


@pytest.mark.parametrize("name", ["tall", "wide", "square"])
def test_gradients_are_orthogonal_to_the_frozen_directions(name):
    base = _shapes()
    weight = getattr(base, name).weight.detach().clone()
    model = _adapt(base, OSFConfig(effective_rank=4, target_modules=["tall", "wide", "square"]))
    model.train()
    model(torch.randn(8, 12, generator=torch.Generator().manual_seed(3))).pow(2).sum().backward()
    params = getattr(model.base_model.model, name).osf_svd_params["default"]
    u, _, vt = torch.linalg.svd(weight, full_matrices=False)
    u_high, v_high = u[:, :4], vt[:4, :]
    assert params["U_low"].grad.abs().max() > 1e-4 and params["V_low"].grad.abs().max() > 1e-4
    assert (u_high.T @ params["U_low"].grad).abs().max() < 1e-5
    assert (params["V_low"].grad @ v_high.T).abs().max() < 1e-5


def test_training_leaves_the_top_singular_directions_alone():
    base = _shapes()
    weight = base.tall.weight.detach().clone()
    model = _adapt(base, OSFConfig(effective_rank=4, target_modules=["tall"]))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model.train()
    for step in range(5):
        optimizer.zero_grad()
        model(torch.randn(8, 12, generator=torch.Generator().manual_seed(step))).pow(2).mean().backward()
        optimizer.step()
    layer = model.base_model.model.tall
    effective = weight + layer.get_delta_weight("default").detach()
    assert (effective - weight).abs().max() > 1e-3  # it trained
    u, s, vt = torch.linalg.svd(weight, full_matrices=False)
    # the frozen block U_highᵀ W V_highᵀ is still diag(S_high), and the update lives in the complement
    torch.testing.assert_close(u[:, :4].T @ effective @ vt[:4].T, torch.diag(s[:4]), rtol=0, atol=1e-4)
    assert (u[:, :4].T @ (effective - weight)).abs().max() < 1e-4


def test_effective_rank_rules():
    assert resolve_rank(None, 12) == 6
    assert resolve_rank(0.5, 12) == 6 and resolve_rank(1.0, 12) == 12 and resolve_rank(0.25, 10) == 2
    assert resolve_rank(3, 12) == 3 and resolve_rank(1, 12) == 1 and resolve_rank(2.9, 12) == 2
    assert resolve_rank(40, 12) == 12  # clipped to the smaller dimension
    config = OSFConfig(effective_rank=0.5, rank_pattern={"wid": 3, "e": 2}, target_modules=["tall", "wide", "square"])
    model = _adapt(_shapes(), config)
    ranks = {n: getattr(model.base_model.model, n).osf_effective_rank["default"] for n in ("tall", "wide", "square")}
    assert ranks == {"tall": 6, "wide": 3, "square": 2}  # re.search, first matching pattern wins
    with pytest.raises(ConfigError, match="resolves to 0"):
        _adapt(_shapes(), OSFConfig(effective_rank=0.01, target_modules=["tall"]))


def test_only_the_trained_tensors_are_saved_and_the_rest_is_rebuilt(tmp_path):
    model = _adapt(_shapes(), OSFConfig(effective_rank=4, target_modules=["tall", "wide"], init_weights=False)).eval()
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert sorted(saved) == [
        f"base_model.model.{n}.osf_svd_params.{p}" for n in ("tall", "wide") for p in ("S_low", "U_low", "V_low")
    ]
    loaded = PeftModel.from_pretrained(_shapes(), tmp_path).eval()
    layer, original = loaded.base_model.model.tall, model.base_model.model.tall
    assert torch.equal(layer.osf_U_low_init["default"], original.osf_U_low_init["default"])
    x = torch.randn(4, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_unmerge_restores_the_base_weights():
    """Hugging Face PEFT refuses to unmerge OSF; the update is additive, so here it is undone."""
    base = _shapes()
    before = base.wide.weight.detach().clone()
    model = _adapt(base, OSFConfig(effective_rank=4, target_modules=["wide"], init_weights=False)).eval()
    x = torch.randn(4, 12)
    with torch.no_grad():
        adapted = model(x)
        model.merge_adapter()
        torch.testing.assert_close(model(x), adapted, rtol=1e-5, atol=1e-5)
        model.unmerge_adapter()
        torch.testing.assert_close(model.base_model.model.wide.get_base_layer().weight, before, rtol=0, atol=1e-5)
        torch.testing.assert_close(model(x), adapted, rtol=1e-5, atol=1e-5)


def test_unknown_architectures_default_to_every_linear_layer_and_conv1d_is_refused():
    model = _adapt(_shapes(), OSFConfig(effective_rank=2))
    assert all(isinstance(getattr(model.base_model.model, n), OSFLinear) for n in ("tall", "wide", "square"))
    with pytest.raises(ConfigError, match="Conv1D"):
        _adapt(models.GPT2.build(), OSFConfig(task_type="CAUSAL_LM"))


def test_training_on_a_bf16_base():
    """fp32 trained tensors and bf16 frozen parts: the projection casts its basis to the gradient's dtype."""
    model = _adapt(_shapes().to(torch.bfloat16), OSFConfig(effective_rank=4, target_modules=["tall", "wide"]))
    params = model.base_model.model.tall.osf_svd_params["default"]
    assert params["U_low"].dtype == torch.float32 and model.base_model.model.tall.osf_U_high["default"].dtype == torch.bfloat16
    model.train()
    model(torch.randn(4, 12, dtype=torch.bfloat16)).float().pow(2).sum().backward()
    assert params["U_low"].grad.dtype == torch.float32 and torch.isfinite(params["U_low"].grad).all()


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())


@needs_hf
def test_gradients_equal_hugging_faces_projected_gradients():
    kwargs = dict(effective_rank=4, target_modules=["tall", "wide", "square"], init_weights=False)
    torch.manual_seed(5)
    ours = _adapt(_shapes(), OSFConfig(**kwargs))
    torch.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(_shapes(), peft.OSFConfig(**kwargs))
    x = torch.randn(6, 12, generator=torch.Generator().manual_seed(6))
    for model in (ours, theirs):
        model.train()
        model(x).pow(2).sum().backward()
    grads = {n: p.grad for n, p in ours.named_parameters() if p.requires_grad}
    hf_grads = {n: p.grad for n, p in theirs.named_parameters() if p.requires_grad}
    assert set(grads) == set(hf_grads) and len(grads) == 9
    for name, grad in grads.items():
        torch.testing.assert_close(grad, hf_grads[name], rtol=1e-5, atol=1e-6, msg=name)


@needs_hf
def test_ranks_and_shapes_equal_hugging_faces():
    kwargs = dict(effective_rank=0.4, rank_pattern={"square": 9}, target_modules=["tall", "wide", "square"])
    ours = _adapt(_shapes(), OSFConfig(**kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(_shapes(), peft.OSFConfig(**kwargs))
    shapes = {n: tuple(p.shape) for n, p in ours.named_parameters() if p.requires_grad}
    assert shapes == {n: tuple(p.shape) for n, p in theirs.named_parameters() if p.requires_grad}


@needs_hf
def test_default_targets_are_hugging_faces():
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_OSF_TARGET_MODULES_MAPPING as theirs

    from peft_osf.defaults import OSF_TARGETS

    assert {k: list(v) for k, v in OSF_TARGETS.items()} == theirs


def test_llama_defaults_are_the_seven_projections():
    model = _adapt(models.LLAMA.build(), OSFConfig(task_type="CAUSAL_LM"))
    adapted = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, OSFLinear)})
    assert adapted == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
