"""BufferDict as a per-adapter container, and the linear-target helpers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.linear_targets import is_transformers_conv1d, linear_features, reconcile_fan_in_fan_out


def test_buffer_dict_persistence_per_entry():
    store = BufferDict(persistent=False)
    store["a"] = torch.ones(2)
    store.set("b", torch.zeros(3), persistent=True)
    assert set(store.state_dict()) == {"b"} and store.keys() == ["a", "b"]
    store["b"] = torch.full((3,), 2.0)  # replacing keeps the entry's persistence
    assert store.is_persistent("b") and not store.is_persistent("a")
    del store["a"]
    assert "a" not in store and len(store) == 1
    store.clear()
    assert len(store) == 0


class _IndexedLayer(BaseTunerLayer):
    adapter_layer_names = ("weight_delta", "positions")

    def __init__(self, base: nn.Linear) -> None:
        super().__init__(base)
        self.weight_delta = nn.ParameterDict()
        self.positions = BufferDict()

    def update_layer(self, adapter_name: str) -> None:
        self.weight_delta[adapter_name] = nn.Parameter(torch.zeros(3))
        self.positions[adapter_name] = torch.tensor([[0, 1, 2], [2, 1, 0]], dtype=torch.int32)
        self._move_adapter_to_device_of_base_layer(adapter_name)


def test_buffer_entries_are_saved_moved_and_deleted_like_parameters_but_keep_integer_dtype():
    layer = _IndexedLayer(nn.Linear(3, 3).to(torch.float64))
    layer.update_layer("a")
    assert layer.positions["a"].dtype == torch.int32  # not cast to the base's float64
    assert not isinstance(layer.positions["a"], nn.Parameter)
    assert layer.weight_delta["a"].dtype == torch.float64
    saved = {t.saved_key: t.model_key for t in layer.adapter_tensors("a")}
    assert saved == {"weight_delta": "weight_delta.a", "positions": "positions.a"}
    layer.set_adapter("a")  # buffers never become trainable
    assert [p for p in layer.adapter_parameters("a")] == [layer.weight_delta["a"]]
    layer.move_adapter_to_base_device("a")
    assert layer.positions["a"].dtype == torch.int32
    layer.delete_adapter("a")
    assert "a" not in layer.positions and not layer.has_adapter("a")


def test_linear_features_and_fan_in_fan_out():
    transformers = pytest.importorskip("transformers")
    conv1d = transformers.pytorch_utils.Conv1D(6, 4)  # nf=6 outputs, nx=4 inputs; weight [4, 6]
    assert is_transformers_conv1d(conv1d) and not is_transformers_conv1d(nn.Linear(2, 2))
    assert linear_features(conv1d) == (4, 6) and linear_features(nn.Linear(3, 5)) == (3, 5)
    assert linear_features(nn.Conv2d(1, 1, 1)) is None

    class Config:
        fan_in_fan_out = False

    config = Config()
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        reconcile_fan_in_fan_out(config, conv1d)
    assert config.fan_in_fan_out is True
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to False"):
        reconcile_fan_in_fan_out(config, nn.Linear(2, 2))
    assert config.fan_in_fan_out is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reconcile_fan_in_fan_out(config, nn.Linear(2, 2))  # already right: silent


def test_non_persistent_buffer_entries_are_not_saved():
    layer = _IndexedLayer(nn.Linear(3, 3))
    layer.positions = BufferDict(persistent=False)  # e.g. indices regenerated from a seed on load
    layer.update_layer("a")
    assert {t.saved_key for t in layer.adapter_tensors("a")} == {"weight_delta"}
    assert "positions.a" in dict(layer.named_buffers())  # still a buffer: moves with the model
