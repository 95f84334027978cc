"""Random JSON fed to config loading: only the library's documented exceptions come out."""

from __future__ import annotations

import json
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    assert isinstance(config, toy.ToyConfig)
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
