"""Declared containers (`container_types`), `features_from_base` and `additive_forward`: a layer written the
short way behaves like one that builds its containers itself, and the old way keeps working."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.layer_containers import dropout_module, saved_buffers, unsaved_buffers
from peft_core.tuners.mixed_batch import batch_plan


class _Scaled(BaseTunerLayer):
    """y = base(x) + s · x W_aᵀ: a declared layer (no __init__)."""

    adapter_layer_names = ("t_weight", "t_mask", "t_proj")
    other_param_names = ("t_scale", "t_dropout", "t_seen")
    container_types = {"t_mask": saved_buffers, "t_proj": nn.ModuleDict, "t_dropout": nn.ModuleDict, "t_seen": list}
    features_from_base = True
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, scale: float, dropout: float = 0.0) -> None:
        self.t_weight[adapter_name] = nn.Parameter(torch.randn(self.out_features, self.in_features))
        self.t_mask[adapter_name] = torch.ones(self.out_features)
        self.t_scale[adapter_name] = scale
        self.t_dropout[adapter_name] = dropout_module(dropout)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def _delta(self, x: torch.Tensor, name: str) -> torch.Tensor:
        weight = self.t_weight[name]
        return self.t_dropout[name](x.to(weight.dtype)) @ weight.T * self.t_scale[name]

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.additive_forward(x, args, kwargs, self.t_weight, self._delta, "a test layer", cast_to="base")


class _OldWay(BaseTunerLayer):
    """An outside author's layer that creates its own containers (and a plain dict among them)."""

    adapter_layer_names = ("o_weight",)
    other_param_names = ("o_scale",)

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.o_weight = nn.ParameterDict()
        self.o_scale: dict[str, float] = {}


def test_declared_containers_have_their_types_and_are_fresh_per_layer():
    a, b = _Scaled(nn.Linear(3, 5)), _Scaled(nn.Linear(3, 5))
    assert (a.in_features, a.out_features) == (3, 5)
    assert type(a.t_weight) is nn.ParameterDict and type(a.t_proj) is nn.ModuleDict
    assert type(a.t_mask) is BufferDict and type(a.t_dropout) is nn.ModuleDict
    assert a.t_scale == {} and type(a.t_scale) is dict and a.t_seen == []
    assert list(a._modules) == ["base_layer", "t_weight", "t_mask", "t_proj", "t_dropout"]
    assert a.t_weight is not b.t_weight and a.t_scale is not b.t_scale  # never shared between layers
    a.update_layer("x", 2.0)
    assert a.t_mask.is_persistent("x") and "x" not in b.t_weight
    assert sorted(a.state_dict()) == ["base_layer.bias", "base_layer.weight", "t_mask.x", "t_weight.x"]
    assert [t.saved_key for t in a.adapter_tensors("x")] == ["t_weight", "t_mask"]
    a.delete_adapter("x")
    assert "x" not in a.t_scale and "x" not in a.t_weight and not a.t_mask


def test_unsaved_buffers_are_left_out_of_the_saved_tensors():
    buffers = unsaved_buffers()
    buffers["x"] = torch.zeros(2)
    assert not buffers.is_persistent("x") and "x" not in buffers.state_dict()


def test_the_old_way_still_works():
    layer = _OldWay(nn.Linear(3, 5))
    assert not hasattr(layer, "in_features")  # only `features_from_base` layers get sizes from core
    layer.o_weight["x"] = nn.Parameter(torch.ones(2))
    layer.o_scale["x"] = 1.0
    assert layer.has_adapter("x") and layer.adapter_names() == ["x"]
    layer.delete_adapter("x")
    assert layer.o_scale == {}


def test_features_from_base_reads_conv1d_and_convolutions_and_refuses_other_bases():
    from transformers.pytorch_utils import Conv1D

    layer = _Scaled(Conv1D(7, 4))  # weight [in=4, out=7]
    assert (layer.in_features, layer.out_features) == (4, 7)
    conv = _Scaled(nn.Conv2d(2, 6, 3))
    assert (conv.in_features, conv.out_features) == (2, 6)
    with pytest.raises(TypeError, match=r"_Scaled adapts nn.Linear, transformers' Conv1D and nn.ConvNd layers, not Embedding"):
        _Scaled(nn.Embedding(5, 2))


def test_dropout_module():
    assert type(dropout_module(0.0)) is nn.Identity and type(dropout_module(0)) is nn.Identity
    dropout = dropout_module(0.25)
    assert type(dropout) is nn.Dropout and dropout.p == 0.25


def test_additive_forward_adds_deltas_and_bypasses_when_disabled_or_merged():
    torch.manual_seed(0)
    layer = _Scaled(nn.Linear(3, 4))
    layer.update_layer("a", 1.0)
    layer.update_layer("b", 0.5)
    layer.set_adapter(["a", "b"])
    x = torch.randn(2, 3)
    base = layer.base_layer(x)
    expected = base + layer._delta(x, "a") + layer._delta(x, "b")
    torch.testing.assert_close(layer(x), expected)
    layer.enable_adapters(False)
    torch.testing.assert_close(layer(x), base)
    layer.enable_adapters(True)
    layer.set_adapter("a")
    layer.get_delta_weight = lambda name: layer.t_weight[name].detach() * layer.t_scale[name]  # additive merge
    layer.merge()
    torch.testing.assert_close(layer(x), base + layer._delta(x, "a"))  # the merged base layer alone
    layer.unmerge()
    with batch_plan(["a", "b"]):  # a mixed batch: each row its own adapter
        mixed = layer(x)
    torch.testing.assert_close(mixed[0], base[0] + layer._delta(x[:1], "a")[0])
    torch.testing.assert_close(mixed[1], base[1] + layer._delta(x[1:], "b")[0])


def test_additive_forward_casts_to_the_asked_dtype():
    layer = _Scaled(nn.Linear(3, 4).to(torch.bfloat16))
    layer.update_layer("a", 1.0)
    layer.t_weight["a"].data = layer.t_weight["a"].data.float()  # an fp32 adapter on a bf16 base
    layer.set_adapter("a")
    x = torch.randn(2, 3, dtype=torch.bfloat16)
    assert layer(x).dtype == torch.bfloat16
    out = layer.additive_forward(x, (), {}, layer.t_weight, layer._delta, "a test layer")
    assert out.dtype == torch.float32  # no cast asked: the promoted sum
    assert layer.additive_forward(x, (), {}, layer.t_weight, layer._delta, "t", cast_to="input").dtype == torch.bfloat16


def test_merge_helpers_check_before_writing():
    from peft_core.errors import AdapterStateError

    layer = _Scaled(nn.Linear(3, 2))
    base = layer.get_base_layer()
    w0, b0 = base.weight.detach().clone(), base.bias.detach().clone()
    layer.add_to_base_weight(torch.ones_like(w0), "a", safe_merge=False)
    torch.testing.assert_close(base.weight.data, w0 + 1)
    with pytest.raises(AdapterStateError, match="non-finite"):
        layer.add_to_base_weight(torch.full_like(w0, float("nan")), "a", safe_merge=True)
    torch.testing.assert_close(base.weight.data, w0 + 1)  # untouched
    with pytest.raises(AdapterStateError, match="non-finite"):
        layer.write_merged("a", True, w0, torch.full_like(b0, float("inf")))
    torch.testing.assert_close(base.weight.data, w0 + 1)  # neither weight nor bias written
    layer.write_merged("a", True, w0 * 2, b0 * 2)
    torch.testing.assert_close(base.weight.data, w0 * 2)
    torch.testing.assert_close(base.bias.data, b0 * 2)


def test_weight_before_merge_is_kept_once_and_restored_exactly():
    from peft_core.tuners.weight_snapshot import restore_weight_before_merge, weight_before_merge

    layer = _Scaled(nn.Linear(3, 2).to(torch.bfloat16))
    weight = layer.get_base_layer().weight
    w0 = weight.detach().clone()
    assert not restore_weight_before_merge(layer)  # nothing kept yet
    assert torch.equal(weight_before_merge(layer), w0)
    weight.data += 0.1
    assert torch.equal(weight_before_merge(layer), w0)  # the first copy stays
    assert restore_weight_before_merge(layer) and torch.equal(weight, w0)
    assert layer._weight_before_merge is None


def test_batch_forward_is_the_mixed_batch_hook_of_the_inherited_forward():
    class Shifted(BaseTunerLayer):
        adapter_layer_names = ("s_shift",)
        container_types = {}
        supports_mixed_batch = True
        calls: list = []

        def adapted_forward(self, x, adapter_names, *args, **kwargs):
            out = self.base_layer(x)
            for name in adapter_names:
                out = out + self.s_shift[name]
            return out

        def batch_forward(self, plan, x, *args, **kwargs):
            self.calls.append(list(plan.adapter_groups()))
            return super().batch_forward(plan, x, *args, **kwargs)

    layer = Shifted(nn.Identity())
    layer.s_shift["a"] = nn.Parameter(torch.tensor(1.0))
    layer.s_shift["b"] = nn.Parameter(torch.tensor(10.0))
    layer.set_adapter("a")
    x = torch.zeros(2, 1)
    assert layer(x).flatten().tolist() == [1.0, 1.0] and not Shifted.calls
    with batch_plan(["a", "b"]):
        assert layer(x).flatten().tolist() == [1.0, 10.0]
    assert Shifted.calls == [["a", "b"]]
