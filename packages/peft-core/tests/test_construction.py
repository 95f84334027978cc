"""peft_core.tuners.construction builds the same modules as torch's constructors, and defers to
torch whenever a patched constructor or a registration hook could see the difference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.construction import init_module, new_module, register_module


def _shape_of(module: nn.Module) -> dict[str, object]:
    return {k: (type(v), v if not isinstance(v, (dict, set, list)) else len(v)) for k, v in module.__dict__.items()}


@pytest.mark.parametrize("cls", [nn.Module, nn.ModuleDict, nn.Identity])
def test_new_module_equals_the_constructor(cls):
    fast, slow = new_module(cls), cls()
    assert type(fast) is cls
    assert _shape_of(fast) == _shape_of(slow)
    other = new_module(cls)
    for key, value in fast.__dict__.items():
        if isinstance(value, (dict, set, list)):
            assert value is not other.__dict__[key], key  # fresh containers, never shared
    fast.add_module("child", nn.Linear(2, 2))  # a working module
    assert "child" not in other._modules and fast.child.in_features == 2


def test_other_classes_and_patched_constructors_use_torch(monkeypatch):
    assert isinstance(new_module(nn.ParameterDict), nn.ParameterDict)  # ParameterDict sets more state
    assert new_module(nn.ParameterDict)._keys == {}
    calls = []
    original = nn.Module.__init__

    def patched(self, *args, **kwargs):  # what a framework's "init on device" context does
        calls.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "__init__", patched)
    init_module(nn.Module.__new__(nn.Module))
    assert calls == [nn.Module]
    new_module(nn.ModuleDict)  # ModuleDict.__init__ calls the patched Module.__init__
    assert calls[-1] is nn.ModuleDict


def test_register_module_stores_plain_names_and_defers_to_add_module_otherwise():
    parent = nn.Module()
    child = nn.Linear(2, 2)
    register_module(parent, "a", child)
    assert parent.a is child and list(parent._modules) == ["a"]
    register_module(parent, "a", nn.Identity())  # replacing keeps the position
    assert isinstance(parent.a, nn.Identity)
    parent.plain = 3
    with pytest.raises(KeyError, match="attribute 'plain' already exists"):
        register_module(parent, "plain", child)
    with pytest.raises(KeyError, match="module name can"):
        register_module(parent, "x.y", child)
    seen = []
    handle = torch.nn.modules.module.register_module_module_registration_hook(
        lambda module, name, submodule: seen.append(name)
    )
    try:
        register_module(parent, "b", child)
    finally:
        handle.remove()
    assert seen == ["b"] and parent.b is child


class _Mixin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mixin_ran = True


class _PlainLayer(BaseTunerLayer):
    pass


class _MixedLayer(BaseTunerLayer, _Mixin):
    pass


def test_tuner_layer_init_keeps_a_mixin_in_the_chain():
    base = nn.Linear(3, 3)
    plain, mixed = _PlainLayer(base), _MixedLayer(nn.Linear(3, 3))
    assert plain.base_layer is base and plain.get_base_layer() is base
    assert _shape_of(plain).keys() >= _shape_of(nn.Module()).keys()
    assert mixed.mixin_ran and isinstance(mixed.base_layer, nn.Linear)
    assert [n for n, _ in plain.named_modules()] == ["", "base_layer"]
