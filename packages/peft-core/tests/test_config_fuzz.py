"""Random JSON fed to config loading: only the library's documented exceptions come out."""

from __future__ import annotations

import json
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import peft_core
from peft_core import ConfigError, PeftConfig, PeftError

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)
toy_fields = st.sampled_from(
    ["r", "target_modules", "exclude_modules", "layers_to_transform", "layers_pattern", "modules_to_save",
     "rank_pattern", "init_weights", "use_magic", "task_type", "inference_mode", "revision", "auto_mapping"]
)
peft_types = st.sampled_from(["TOY", "toy", "LORA_XYZ", "", "BONE"]) | st.text(max_size=6) | json_scalars


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    peft_type=peft_types,
    fields=st.dictionaries(toy_fields | st.text(max_size=8), json_values, max_size=6),
    drop_type=st.booleans(),
)
def test_random_configs_raise_only_documented_errors(toy, tmp_path_factory, peft_type, fields, drop_type):
    data = dict(fields)
    if not drop_type:
        data["peft_type"] = peft_type
    path = tmp_path_factory.mktemp("cfg") / "adapter_config.json"
    path.write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = PeftConfig.from_pretrained(path.parent)
        except PeftError:
            return
    # the toy's class, or an installed method's when the drawn text happens to name one (e.g. "IA3")
    assert type(config) is peft_core.get_peft_method(config.peft_type).config_cls
    json.loads(config.to_json_string())  # whatever loaded can be written back


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_random_file_contents(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("raw") / "adapter_config.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        PeftConfig.from_pretrained(path.parent)
    except PeftError:
        pass


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# -- every installed method's real config class ---------------------------------------------------------
# Values are drawn from each field's annotation most of the time (so a healthy share of examples is
# a valid config), from random JSON otherwise; fields from a "newer version" and wrong peft types are
# mixed in. Whatever happens, only PeftError subclasses may come out, and what loads must round-trip.
import typing  # noqa: E402
from collections import Counter  # noqa: E402

import pytest  # noqa: E402
from hypothesis import event  # noqa: E402

from peft_core.config import _type_hints  # noqa: E402
from peft_core.config_fields import field_defaults  # noqa: E402

INSTALLED = sorted(m.name for m in peft_core.installed_methods() if m.distribution is not None)


def _strategy_for(tp, default):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or (origin is not None and type(tp).__name__ == "UnionType"):
        return st.one_of([_strategy_for(a, default) for a in args])
    if tp is type(None):
        return st.none()
    if origin is typing.Literal:
        return st.sampled_from(args)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-2, 48) | st.just(default if isinstance(default, int) else 4)
    if tp is float:
        return st.floats(-0.25, 1.25, allow_nan=False) | st.sampled_from([0.0, 0.1])
    if tp is str:
        return st.sampled_from([default] if isinstance(default, str) else ["q_proj"]) | st.text(max_size=6)
    if origin in (list, set, tuple) or tp in (list, set, tuple):
        inner = _strategy_for(args[0], None) if args else json_scalars
        return st.lists(inner, max_size=3)
    if origin is dict or tp is dict:
        value = _strategy_for(args[1], None) if len(args) == 2 else json_scalars
        return st.dictionaries(st.sampled_from(["q_proj", "v_proj", r".*\.k_proj"]), value, max_size=2)
    return json_values


def _valid_document(cls) -> dict:
    """The JSON a default config saves (AdaLoRA needs one Optional[int] field set: total_step; methods for one
    task kind, such as CPT, need their task_type)."""
    hints = _type_hints(cls)
    candidates = [{}, {"task_type": "CAUSAL_LM"}] + [
        {name: 10} for name, default in field_defaults(cls).items() if default is None and typing.Optional[int] == hints.get(name)
    ]
    for kwargs in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return json.loads(cls(**kwargs).to_json_string())
        except PeftError:
            continue
    pytest.fail(f"{cls.__name__}: no valid default config found among {candidates}")


@pytest.mark.skipif(not INSTALLED, reason="no method package installed next to peft-core")
@pytest.mark.parametrize("method", INSTALLED)
def test_random_json_into_every_installed_config(method, tmp_path):
    config_cls = peft_core.get_peft_method(method).config_cls
    peft_type = method.upper()
    hints = _type_hints(config_cls)
    defaults = field_defaults(config_cls)
    names = sorted(n for n in defaults if n not in ("peft_type", "peft_version"))
    base = _valid_document(config_cls)
    path = tmp_path / "adapter_config.json"
    outcomes: Counter = Counter()

    @settings(max_examples=50, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(data=st.data())
    def check(data):
        doc = dict(base)
        for _ in range(data.draw(st.integers(0, 3), label="changes")):
            name = data.draw(st.sampled_from(names), label="field")
            typed = data.draw(st.integers(0, 9), label="kind") < 8
            strategy = _strategy_for(hints.get(name, typing.Any), defaults.get(name)) if typed else json_values
            doc[name] = data.draw(strategy, label=name)
        newer = data.draw(st.booleans(), label="newer field")
        if newer:
            doc["zz_field_from_a_newer_version"] = data.draw(json_values)
        if data.draw(st.integers(0, 19), label="retype") == 0:
            doc["peft_type"] = data.draw(json_scalars | st.sampled_from(["LORA", "NOT_A_METHOD"]))
        path.write_text(json.dumps(doc))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                config = PeftConfig.from_pretrained(tmp_path)
            except PeftError as exc:
                outcomes["refused"] += 1
                event(f"refused: {type(exc).__name__}")
                assert str(exc)  # every refusal says something
                return
        outcomes["loaded"] += 1
        event("loaded")
        if doc["peft_type"] == peft_type:
            assert isinstance(config, config_cls)
        if newer and doc["peft_type"] == peft_type:
            assert any("zz_field_from_a_newer_version" in str(w.message) for w in caught)
        # What loaded writes back and loads again to the same config.
        config.save_pretrained(tmp_path / "again")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = PeftConfig.from_pretrained(tmp_path / "again")
        first, second = config.to_dict(), again.to_dict()
        first.pop("inference_mode"), second.pop("inference_mode")  # always saved as true
        assert first == second

    check()
    print(method, dict(outcomes))
    total = outcomes["loaded"] + outcomes["refused"]
    # Not vacuous: a healthy share of the examples are valid configs that load.
    assert outcomes["loaded"] >= 0.2 * total, (method, dict(outcomes))
    assert outcomes["refused"] >= 1, (method, dict(outcomes))
