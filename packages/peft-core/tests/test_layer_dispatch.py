"""The layer-dispatch registry and quantized-module detection (no quantization library needed here:
the quantized modules are plain torch modules holding packed weights or a foreign tensor subclass)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core_subprocess import fake_distribution, run_python
from peft_core import (
    BaseTunerLayer,
    DispatchRequest,
    RegistrationError,
    UnsupportedLayerError,
    dispatch_layer,
    get_peft_model,
    layer_dispatchers,
    register_layer_dispatcher,
    unregister_layer_dispatcher,
)
from peft_core.tuners.quantization import quantization_of


class PackedTensor(torch.Tensor):
    """Stands in for a quantization library's weight subclass (defined outside torch)."""


class Int8Linear(nn.Linear):
    """An nn.Linear subclass holding an int8 weight, as bitsandbytes' Linear8bitLt does."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        self.weight = nn.Parameter(torch.zeros(n_out, n_in, dtype=torch.int8), requires_grad=False)


class SubclassLinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        self.weight = nn.Parameter(self.weight.data.as_subclass(PackedTensor), requires_grad=False)


class PackedBufferLinear(nn.Module):
    """A GPTQ-style layer: no weight parameter, an int32 `qweight` buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("qweight", torch.zeros(4, 8, dtype=torch.int32))
        self.register_buffer("scales", torch.ones(8))


def test_quantization_detection_is_generic():
    assert quantization_of(nn.Linear(3, 4)) is None
    assert quantization_of(nn.Linear(3, 4).to(torch.bfloat16)) is None
    assert quantization_of(nn.BatchNorm1d(4)) is None  # int64 num_batches_tracked is not a weight
    assert quantization_of(nn.Embedding(5, 3)) is None
    with torch.device("meta"):
        assert quantization_of(nn.Linear(3, 4)) is None
    assert "torch.int8" in quantization_of(Int8Linear(3, 4))
    assert "PackedTensor" in quantization_of(SubclassLinear(3, 4))
    assert "'qweight'" in quantization_of(PackedBufferLinear())
    fp8 = nn.Linear(3, 4)
    fp8.weight = nn.Parameter(fp8.weight.data.to(torch.float8_e4m3fn), requires_grad=False)
    assert "float8" in quantization_of(fp8)


class DummyLayer(BaseTunerLayer):
    pass


def test_dispatchers_run_by_priority_then_registration_order():
    calls = []

    def make(name, result):
        def dispatch(request: DispatchRequest):
            calls.append(name)
            return result

        return dispatch

    try:
        register_layer_dispatcher("dispatchtest", "late", make("late", DummyLayer))
        register_layer_dispatcher("dispatchtest", "none", make("none", None), priority=5)
        register_layer_dispatcher("dispatchtest", "early", make("early", None), priority=5)
        assert [d.name for d in layer_dispatchers("dispatchtest")] == ["none", "early", "late"]
        assert dispatch_layer("dispatchtest", nn.Linear(2, 2)) is DummyLayer
        assert calls == ["none", "early", "late"]
    finally:
        for name in ("late", "none", "early"):
            unregister_layer_dispatcher("dispatchtest", name)
    assert layer_dispatchers("dispatchtest") == []


def test_registering_another_function_under_a_taken_name_is_refused():
    def first(request):
        return None

    register_layer_dispatcher("dispatchtest", "taken", first)
    try:
        assert register_layer_dispatcher("dispatchtest", "taken", first).dispatch is first  # idempotent
        with pytest.raises(RegistrationError, match="already registered"):
            register_layer_dispatcher("dispatchtest", "taken", lambda request: None)
    finally:
        unregister_layer_dispatcher("dispatchtest", "taken")


def test_quantized_modules_reach_only_quantized_dispatchers():
    seen = []

    def plain(request):
        seen.append(("plain", type(request.module).__name__))
        return DummyLayer if isinstance(request.module, nn.Linear) else None

    def packed(request):
        seen.append(("packed", request.quantization is not None))
        return DummyLayer if isinstance(request.module, Int8Linear) else None

    register_layer_dispatcher("dispatchtest", "plain", plain)
    try:
        with pytest.raises(UnsupportedLayerError) as err:
            dispatch_layer("dispatchtest", Int8Linear(3, 4), key="model.layers.0.q_proj")
        message = str(err.value)
        assert "'model.layers.0.q_proj'" in message and "Int8Linear" in message and "torch.int8" in message
        assert "exclude_modules" in message
        assert seen == []  # the plain dispatcher never saw the packed module
        register_layer_dispatcher("dispatchtest", "packed", packed, quantized=True)
        assert dispatch_layer("dispatchtest", Int8Linear(3, 4)) is DummyLayer
        assert dispatch_layer("dispatchtest", nn.Linear(3, 4)) is DummyLayer  # plain: both may look
        assert seen == [("packed", True), ("plain", "Linear")]  # same priority: registration order
        with pytest.raises(UnsupportedLayerError, match="SubclassLinear"):
            dispatch_layer("dispatchtest", SubclassLinear(3, 4))
        assert dispatch_layer("dispatchtest", nn.Conv1d(2, 2, 1)) is None  # plain and unclaimed: the method decides
    finally:
        unregister_layer_dispatcher("dispatchtest", "plain")
        unregister_layer_dispatcher("dispatchtest", "packed")


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.plain = nn.Linear(4, 4)
        self.packed = Int8Linear(4, 4)

    def forward(self, x):
        return self.plain(x)


def test_every_method_refuses_a_quantized_target_it_has_no_dispatcher_for(toy):
    """The toy method picks its layers by isinstance (nn.Linear); core's guard stops it at the packed
    module, before anything is wrapped, and leaves the model as it was."""
    model = TwoLayers()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UnsupportedLayerError, match=r"'packed' is a quantized .*Int8Linear.*method 'toy'"):
        get_peft_model(model, toy.ToyConfig(target_modules=["plain", "packed"]))
    assert type(model.plain) is nn.Linear and type(model.packed) is Int8Linear
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # targeting only the plain layer works
    peft_model = get_peft_model(TwoLayers(), toy.ToyConfig(target_modules=["plain"]))
    assert isinstance(peft_model.base_model.model.plain, BaseTunerLayer)


def test_a_dispatcher_plug_in_is_found_through_its_entry_point(tmp_path):
    """A package that is never imported by name adds a layer for a quantized type through the
    `peft.layer_dispatchers` entry-point group; it is imported when such a module is met."""
    plugin = '''
        from torch import nn
        from peft_core import register_layer_dispatcher
        import peft_toy

        class ToyInt8Linear(peft_toy.ToyLinear):
            pass

        def dispatch(request):
            if type(request.module).__name__ == "Int8Linear":
                return ToyInt8Linear
            return None

        register_layer_dispatcher("toy", "int8-plugin", dispatch, quantized=True)
    '''
    fake_distribution(
        tmp_path, "toy-int8", "0.1.0", {"int8": "toy_int8_plugin"}, {"toy_int8_plugin.py": plugin},
        group="peft.layer_dispatchers",
    )
    support = __import__("pathlib").Path(__file__).parent / "_support"
    result = run_python(
        """
        import json, sys, torch
        from torch import nn
        import peft_toy
        from peft_core import dispatch_layer, layer_dispatchers

        class Int8Linear(nn.Linear):
            def __init__(self):
                super().__init__(4, 4)
                self.weight = nn.Parameter(torch.zeros(4, 4, dtype=torch.int8), requires_grad=False)

        before = "toy_int8_plugin" in sys.modules
        cls = dispatch_layer("toy", Int8Linear())
        print(json.dumps({"before": before, "cls": cls.__name__, "names": [d.name for d in layer_dispatchers("toy")]}))
        """,
        [tmp_path, support],
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data == {"before": False, "cls": "ToyInt8Linear", "names": ["int8-plugin"]}


def test_a_broken_plug_in_warns_and_the_refusal_still_names_the_type(tmp_path):
    fake_distribution(
        tmp_path, "broken-plugin", "0.1.0", {"broken": "broken_plugin"}, {"broken_plugin.py": "raise ImportError('nope')\n"},
        group="peft.layer_dispatchers",
    )
    result = run_python(
        """
        import torch, warnings
        from torch import nn
        from peft_core import UnsupportedLayerError, dispatch_layer

        layer = nn.Linear(4, 4)
        layer.weight = nn.Parameter(torch.zeros(4, 4, dtype=torch.uint8), requires_grad=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                dispatch_layer("anymethod", layer, key="x")
            except UnsupportedLayerError as exc:
                print("REFUSED", exc)
        print("WARNED", [str(w.message) for w in caught])
        """,
        [tmp_path],
    )
    assert result.returncode == 0, result.stderr
    assert "REFUSED Target module 'x' is a quantized torch.nn.modules.linear.Linear" in result.stdout
    assert "broken_plugin" in result.stdout and "failed to load" in result.stdout
