"""The shared LyCORIS-family base (`peft_core.tuners.lycoris`), checked with a test-only method.

The test method ("lyco_test") builds ΔW = (w_a @ w_b) * alpha / r, the simplest product the base
can carry, so every check here is about the base: config validation, shapes and kinds, forward on
Linear / Conv1d / Conv2d, rank and module dropout, merging, mixed batches, patterns and errors.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from peft_core import ConfigError, PeftModel, get_peft_model, register_peft_method
from peft_core.registry import get_peft_method
from peft_core.tuners.lycoris import LycorisConfig, LycorisLayer, LycorisTuner, base_layer_kind


@dataclass
class LycoTestConfig(LycorisConfig):
    peft_type: str = "LYCO_TEST"


class LycoTestLayer(LycorisLayer):
    adapter_layer_names = ("lycotest_a", "lycotest_b")

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.lycotest_a = nn.ParameterDict()
        self.lycotest_b = nn.ParameterDict()

    def create_adapter_parameters(self, adapter_name, r, config):
        self.lycotest_a[adapter_name] = nn.Parameter(torch.empty(self.out_features, r))
        self.lycotest_b[adapter_name] = nn.Parameter(torch.empty(r, self.flat_in_features()))
        nn.init.kaiming_uniform_(self.lycotest_a[adapter_name], a=math.sqrt(5))
        if config.init_weights:
            nn.init.zeros_(self.lycotest_b[adapter_name])
        else:
            nn.init.kaiming_uniform_(self.lycotest_b[adapter_name], a=math.sqrt(5))

    def delta_weight(self, adapter_name):
        return (self.lycotest_a[adapter_name] @ self.lycotest_b[adapter_name]) * self.scaling[adapter_name]


class LycoTestModel(LycorisTuner):
    prefix = "lycotest_"
    layer_cls = LycoTestLayer


try:
    get_peft_method("lyco_test")
except Exception:
    register_peft_method(name="lyco_test", config_cls=LycoTestConfig, model_cls=LycoTestModel, prefix="lycotest_", plugin_api=">=1,<2")


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.point = nn.Conv2d(6, 6, 1)
        self.conv1 = nn.Conv1d(6, 4, 3, padding=1, stride=1)
        self.lin = nn.Linear(4 * 16, 5)

    def forward(self, x):
        h = torch.relu(self.point(self.conv2(x)))  # [B, 6, 4, 4]
        h = self.conv1(h.flatten(2))  # [B, 4, 16]
        return self.lin(h.flatten(1))


TARGETS = ["conv2", "point", "conv1", "lin"]


@pytest.fixture
def convnet():
    torch.manual_seed(0)
    return ConvNet().eval()


@pytest.fixture
def x():
    torch.manual_seed(1)
    return torch.randn(3, 4, 4, 4)


def _model(base, **kwargs):
    kwargs.setdefault("target_modules", TARGETS)
    kwargs.setdefault("init_weights", False)
    return get_peft_model(base, LycoTestConfig(**kwargs)).eval()


# -- config -------------------------------------------------------------------------------------
def test_config_defaults_and_validation():
    c = LycoTestConfig(target_modules=["lin", "conv1"])
    assert (c.r, c.alpha, c.rank_dropout, c.module_dropout, c.use_effective_conv2d, c.init_weights) == (
        8, 8, 0.0, 0.0, False, True
    )
    assert c.target_modules == {"lin", "conv1"} and c.to_dict()["target_modules"] == ["conv1", "lin"]
    for bad in ({"r": 0}, {"r": 2.0}, {"alpha": "x"}, {"rank_dropout": 1.5}, {"module_dropout": -0.1},
                {"rank_pattern": {"lin": 0}}, {"alpha_pattern": {"lin": None}}, {"layers_pattern": "layers"}):
        with pytest.raises(ConfigError):
            LycoTestConfig(**bad)


def test_base_layer_kind():
    assert base_layer_kind(nn.Linear(2, 2)) == "linear"
    assert base_layer_kind(nn.Conv1d(2, 2, 1)) == "conv1d"
    assert base_layer_kind(nn.Conv2d(2, 2, 1)) == "conv2d"
    assert base_layer_kind(nn.Conv3d(2, 2, 1)) is None and base_layer_kind(nn.Embedding(2, 2)) is None


# -- layers and forward -------------------------------------------------------------------------
def test_shapes_and_forward_match_an_independent_computation(convnet, x):
    pristine = copy.deepcopy(convnet)
    model = _model(convnet, r=2, alpha=3)
    inner = model.base_model.model
    assert inner.conv2.kind == "conv2d" and inner.conv2.flat_in_features() == 2 * 9
    assert inner.conv2.lycotest_b["default"].shape == (2, 18)
    assert inner.conv1.kind == "conv1d" and inner.conv1.lycotest_b["default"].shape == (2, 18)
    assert inner.point.uses_effective_conv(True) is False and inner.conv2.uses_effective_conv(True) is True
    assert inner.lin.uses_effective_conv(True) is False

    def delta(layer):
        a, b = layer.lycotest_a["default"], layer.lycotest_b["default"]
        return (a @ b * 1.5).reshape(layer.get_base_layer().weight.shape)

    with torch.no_grad():
        for name in TARGETS:
            getattr(pristine, name).weight += delta(getattr(inner, name))
        assert torch.allclose(model(x), pristine(x), atol=1e-5)
        # the additive path itself: base(x) + F.conv2d(x, ΔW) with the base's stride/padding/groups
        conv = inner.conv2
        expected = conv.get_base_layer()(x) + F.conv2d(x, delta(conv), padding=1, groups=2)
        assert torch.allclose(conv(x), expected, atol=1e-6)


def test_merge_unmerge_disable(convnet, x):
    pristine = copy.deepcopy(convnet)
    base_weights = {k: v.clone() for k, v in convnet.state_dict().items()}
    model = _model(convnet)
    with torch.no_grad():
        expected = model(x)
        model.merge_adapter()
        assert torch.allclose(model(x), expected, atol=1e-5)
        model.unmerge_adapter()
        for k, v in model.base_model.model.state_dict().items():
            if ".base_layer." in k:
                assert torch.allclose(v, base_weights[k.replace(".base_layer", "")], atol=1e-6)
        with model.disable_adapter():
            plain = model(x)
        assert torch.allclose(plain, pristine(x), atol=1e-6)


def test_safe_merge_refuses_non_finite(convnet):
    model = _model(convnet, target_modules=["lin"])
    with torch.no_grad():
        model.base_model.model.lin.lycotest_a["default"].fill_(float("inf"))
    before = model.base_model.model.lin.get_base_layer().weight.clone()
    with pytest.raises(ValueError, match="non-finite"):
        model.merge_adapter(safe_merge=True)
    assert torch.equal(model.base_model.model.lin.get_base_layer().weight, before)


def test_patterns_set_rank_alpha_and_scaling(convnet):
    model = _model(convnet, r=4, alpha=8, rank_pattern={"conv1": 2}, alpha_pattern={"lin": 2})
    inner = model.base_model.model
    assert (inner.conv1.r["default"], inner.conv1.scaling["default"]) == (2, 4.0)
    assert (inner.lin.r["default"], inner.lin.scaling["default"]) == (4, 0.5)
    assert inner.conv2.scaling["default"] == 2.0


def test_rank_dropout_drops_output_rows_with_seeded_cpu_draws(convnet):
    model = _model(convnet, target_modules=["lin"], rank_dropout=0.5)
    layer = model.base_model.model.lin
    full = layer.get_delta_weight("default")
    torch.manual_seed(7)
    dropped = layer.get_delta_weight("default", apply_rank_dropout=True)
    torch.manual_seed(7)
    keep = (torch.rand(full.shape[0]) > 0.5).float()
    assert torch.allclose(dropped, full * (keep / keep.mean())[:, None])
    layer.rank_dropout_scale["default"] = False  # methods whose config turns rescaling off
    torch.manual_seed(7)
    assert torch.allclose(layer.get_delta_weight("default", apply_rank_dropout=True), full * keep[:, None])


def test_module_dropout_skips_the_adapter_in_training_only(convnet, x):
    # module_dropout must stay below 1 (a rate of 1 is refused); a seeded draw skips the adapter.
    model = _model(convnet, target_modules=["lin"], module_dropout=0.999999)
    with torch.no_grad():
        adapted = model(x)
        model.train()
        torch.manual_seed(0)
        assert torch.rand(1).item() <= 0.999999
        torch.manual_seed(0)
        assert torch.equal(model(x), _base_out(model, x))
        model.eval()
        assert torch.equal(model(x), adapted)


def _base_out(model, x):
    with model.disable_adapter():
        return model(x)


def test_training_draws_one_module_dropout_value_per_adapter_call(convnet, x):
    model = _model(convnet, target_modules=["lin"], module_dropout=0.0)
    model.train()
    torch.manual_seed(3)
    model(x)
    after = torch.rand(1)
    torch.manual_seed(3)
    torch.rand(1)
    assert torch.equal(after, torch.rand(1))


def test_mixed_batch_rows_match_single_adapter_runs(convnet, x):
    model = _model(convnet)
    model.add_adapter("other", LycoTestConfig(target_modules=["lin", "conv2"], init_weights=False, r=3))
    with torch.no_grad():
        outs = {}
        for name in ("default", "other"):
            model.set_adapter(name)
            outs[name] = model(x)
        outs["__base__"] = _base_out(model, x)
        names = ["other", "__base__", "default"]
        mixed = model(x, adapter_names=names)
    for row, name in enumerate(names):
        assert torch.allclose(mixed[row], outs[name][row], atol=1e-6)


def test_save_load_round_trip(convnet, x, tmp_path):
    pristine = copy.deepcopy(convnet)
    model = _model(convnet, use_effective_conv2d=True)
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(pristine, tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def test_unsupported_target_type_is_refused():
    model = nn.Sequential(nn.Embedding(4, 4))
    with pytest.raises(TypeError, match=r"'0' \(Embedding\) is not supported by LycoTestModel; supported: Linear, Conv1d"):
        get_peft_model(model, LycoTestConfig(target_modules=["0"]))


def test_default_init_is_a_no_op(convnet, x):
    pristine = copy.deepcopy(convnet)
    model = _model(convnet, init_weights=True)
    with torch.no_grad():
        assert torch.equal(model(x), pristine(x))
