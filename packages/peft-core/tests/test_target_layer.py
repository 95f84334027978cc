"""`TargetLayerTuner`: a method's `_create_and_replace` declared as a `TargetLayer`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from peft_core import BaseTunerLayer, ConfigError
from peft_core.tuners.target_layer import LINEAR, LINEAR_OR_CONV1D, PLAIN_LINEAR, TargetLayer, TargetLayerTuner


class _Recorder(BaseTunerLayer):
    """Records its constructor's layout flag and every update_layer call."""

    adapter_layer_names = ("rec",)

    def __init__(self, base_layer, fan_in_fan_out=None):
        super().__init__(base_layer)
        self.rec = nn.ParameterDict()
        self.fan_in_fan_out = fan_in_fan_out
        self.updates = []

    def update_layer(self, adapter_name, *args):
        if args and args[0] == "too big":
            raise ConfigError("rank 'too big' exceeds the layer")
        self.updates.append((adapter_name, *args))
        self.rec[adapter_name] = nn.Parameter(torch.zeros(1))


class _Other(BaseTunerLayer):
    """Another method's layer (a mixed-method model nests around it)."""

    adapter_layer_names = ("other",)

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.other = nn.ParameterDict()


@dataclass
class _Config:
    r: int = 4
    scale: float = 0.5
    fan_in_fan_out: bool = True


class _Conv1D(nn.Module):
    """Stands for transformers' Conv1D (recognised by class name and module): weight stored [in, out]."""

    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nx, nf))


_Conv1D.__name__ = "Conv1D"
_Conv1D.__module__ = "transformers.pytorch_utils"


def _tuner(spec, nesting=False):
    class Tuner(TargetLayerTuner):
        target_layer = spec

    tuner = Tuner.__new__(Tuner)  # only _create_and_replace is exercised: no model to adapt
    nn.Module.__init__(tuner)
    tuner.allow_nesting = nesting
    return tuner


def test_wraps_with_the_declared_fields_then_adds_further_adapters_to_the_same_layer():
    tuner = _tuner(TargetLayer(_Recorder, "Toy", LINEAR, args=("r", "scale")))
    config = _Config()
    parent = nn.Sequential(nn.Linear(2, 2))
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to False"):  # HF's correction for nn.Linear
        tuner._create_and_replace(config, "a", parent[0], "0", parent, "0")
    layer = parent[0]
    assert isinstance(layer, _Recorder) and layer.updates == [("a", 4, 0.5)] and config.fan_in_fan_out is False
    assert layer.fan_in_fan_out is None  # LINEAR targets: the layer is not told a layout
    tuner._create_and_replace(_Config(r=8), "b", layer, "0", parent, "0")
    assert parent[0] is layer and layer.updates[1] == ("b", 8, 0.5)


def test_without_fields_update_layer_gets_the_config_and_conv1d_targets_get_their_layout():
    tuner = _tuner(TargetLayer(_Recorder, "Toy", LINEAR_OR_CONV1D))
    config = _Config(fan_in_fan_out=False)
    parent = nn.Sequential(_Conv1D(3, 2))
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        tuner._create_and_replace(config, "a", parent[0], "0", parent, "0")
    assert parent[0].updates == [("a", config)] and parent[0].fan_in_fan_out is True


def test_refusal_names_module_method_and_supported_types_in_the_declared_error_class():
    parent = nn.Sequential(nn.Embedding(3, 2))
    tuner = _tuner(TargetLayer(_Recorder, "Toy", LINEAR_OR_CONV1D))
    expected = (
        r"Target module '0' \(Embedding\) is not supported by Toy; supported: torch.nn.Linear and transformers' "
        r"Conv1D. Adjust target_modules \(or exclude_modules\)."
    )
    with pytest.raises(ConfigError, match=expected):
        tuner._create_and_replace(_Config(), "a", parent[0], "0", parent, "0")
    with pytest.raises(TypeError, match=expected):
        _tuner(TargetLayer(_Recorder, "Toy", LINEAR_OR_CONV1D, error=TypeError))._create_and_replace(
            _Config(), "a", parent[0], "0", parent, "0"
        )
    unnamed = _tuner(TargetLayer(_Recorder))  # no method name: the tuner's class name
    with pytest.raises(ConfigError, match="not supported by Tuner; supported: torch.nn.Linear only"):
        unnamed._create_and_replace(_Config(), "a", parent[0], "0", parent, "0")
    assert isinstance(parent[0], nn.Embedding)


def test_plain_linear_refuses_subclasses():
    class MyLinear(nn.Linear):
        pass

    parent = nn.Sequential(MyLinear(2, 2))
    with pytest.raises(ConfigError, match=r"\(MyLinear\) is not supported by Toy; supported: only plain torch.nn.Linear"):
        _tuner(TargetLayer(_Recorder, "Toy", PLAIN_LINEAR))._create_and_replace(_Config(), "a", parent[0], "0", parent, "0")


def test_a_config_error_of_update_layer_names_the_module():
    parent = nn.Sequential(nn.Linear(2, 2))
    tuner = _tuner(TargetLayer(_Recorder, "Toy", args=("r",)))
    with pytest.raises(ConfigError, match=r"^'blocks.0.q': rank 'too big' exceeds the layer$"):
        tuner._create_and_replace(_Config(r="too big", fan_in_fan_out=False), "a", parent[0], "0", parent, "blocks.0.q")
    assert isinstance(parent[0], nn.Linear)  # nothing replaced


def test_nesting_follows_the_declaration():
    config = _Config(fan_in_fan_out=False)
    holder = nn.Sequential(_Other(nn.Linear(2, 2)))
    _tuner(TargetLayer(_Recorder, "Toy"), nesting=True)._create_and_replace(config, "a", holder[0], "0", holder, "0")
    assert isinstance(holder[0], _Recorder) and isinstance(holder[0].base_layer, _Other)  # judged by what it wraps

    holder = nn.Sequential(_Other(nn.Linear(2, 2)))
    with pytest.raises(ConfigError, match="already a _Other of another method"):  # outside a mixed-method model
        _tuner(TargetLayer(_Recorder, "Toy"))._create_and_replace(config, "a", holder[0], "0", holder, "0")
    with pytest.raises(ConfigError, match=r"'0' \(_Other\) is not supported by Toy"):  # nests=False: judged itself
        _tuner(TargetLayer(_Recorder, "Toy", nests=False), nesting=True)._create_and_replace(
            config, "a", holder[0], "0", holder, "0"
        )
    assert isinstance(holder[0], _Other)


def test_hooks_give_per_module_values_and_build_the_layer():
    class Tuner(TargetLayerTuner):
        target_layer = TargetLayer(_Recorder, "Toy")

        def layer_args(self, config, adapter_name, current_key):
            return (len(current_key),)

        def new_layer(self, target, config, current_key):
            return _Recorder(target, fan_in_fan_out="built here")

    tuner = Tuner.__new__(Tuner)
    nn.Module.__init__(tuner)
    parent = nn.Sequential(nn.Linear(2, 2))
    tuner._create_and_replace(_Config(fan_in_fan_out=False), "a", parent[0], "0", parent, "abc")
    assert parent[0].updates == [("a", 3)] and parent[0].fan_in_fan_out == "built here"


def test_per_module_args_read_pattern_overrides():
    from peft_core.tuners.target_layer import PerModule

    @dataclass
    class PatternConfig:
        r: int = 4
        rank_pattern: dict = None
        scale: float = 0.5

    tuner = _tuner(TargetLayer(_Recorder, "Toy", args=(PerModule("r", "rank_pattern"), "scale")))
    config = PatternConfig(rank_pattern={"v_proj": 2})
    parent = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    tuner._create_and_replace(config, "a", parent[0], "0", parent, "layers.0.q_proj")
    tuner._create_and_replace(config, "a", parent[1], "1", parent, "layers.0.v_proj")
    assert parent[0].updates == [("a", 4, 0.5)] and parent[1].updates == [("a", 2, 0.5)]
