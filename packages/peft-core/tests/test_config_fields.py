"""`peft_core.config_fields`: shared field groups compose into a config that behaves like one written out."""

from __future__ import annotations

import dataclasses
import enum
import json
import warnings
from dataclasses import dataclass, field

import pytest

from peft_core import ConfigError, PeftConfig
from peft_core.config_fields import (
    ExcludeModulesField,
    FanInFanOutField,
    LayerSelectionFields,
    SeededProjectionFields,
    TargetingFields,
    bias_field,
    check_bools,
    check_count_or_size,
    check_ints,
    check_numbers,
    check_positive_ints,
    coerce_choice,
    pattern_field,
    warn_projection_not_saved,
)


class Kind(enum.StrEnum):
    A = "A"
    B = "B"


@dataclass
class ComposedConfig(LayerSelectionFields, FanInFanOutField, SeededProjectionFields, ExcludeModulesField, TargetingFields):
    peft_type: str = "COMPOSED_TEST"
    r: int = field(default=4, metadata={"help": "Rank."})
    bias: str = bias_field("composed_only")
    rank_pattern: dict = pattern_field("rank")
    layers_pattern: str | None = field(default=None, metadata={"help": "A narrower type, redeclared."})


def test_groups_give_hf_names_defaults_and_base_fields_first():
    fields = {f.name: f for f in dataclasses.fields(ComposedConfig)}
    base = [f.name for f in dataclasses.fields(PeftConfig)]
    names = list(fields)
    assert names[: len(base)] == base
    assert names[len(base) :] == [
        "target_modules", "modules_to_save", "exclude_modules", "projection_prng_key", "save_projection",
        "fan_in_fan_out", "layers_to_transform", "layers_pattern", "r", "bias", "rank_pattern",
    ]
    config = ComposedConfig()
    assert (config.target_modules, config.modules_to_save, config.exclude_modules) == (None, None, None)
    assert (config.layers_to_transform, config.layers_pattern, config.fan_in_fan_out) == (None, None, False)
    assert (config.projection_prng_key, config.save_projection, config.bias) == (0, True, "none")
    assert config.rank_pattern == {} and ComposedConfig().rank_pattern is not config.rank_pattern
    assert "composed_only" in fields["bias"].metadata["help"]


def test_redeclared_field_keeps_its_place_and_type_is_checked():
    with pytest.raises(ConfigError, match="layers_pattern"):
        ComposedConfig.from_dict({"layers_pattern": ["layers"]})
    assert ComposedConfig.from_dict({"layers_pattern": "layers", "layers_to_transform": [0]}).layers_pattern == "layers"


def test_list_targets_become_sets_and_round_trip_through_json(tmp_path):
    config = ComposedConfig(target_modules=["b", "a"], exclude_modules=["c"], modules_to_save=["head"])
    assert config.target_modules == {"a", "b"} and config.exclude_modules == {"c"}
    assert config.modules_to_save == ["head"]
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    assert data["target_modules"] == ["a", "b"] and data["exclude_modules"] == ["c"]
    again = ComposedConfig.from_dict(data)
    assert again.to_dict() == config.to_dict()


def test_group_without_exclude_modules_still_sets_target_modules():
    @dataclass
    class Plain(TargetingFields):
        peft_type: str = "PLAIN_TEST"

    config = Plain(target_modules=["q", "k"])
    assert config.target_modules == {"q", "k"} and not hasattr(config, "exclude_modules")
    assert "exclude_modules" not in config.to_dict()


@dataclass
class Checked:
    count: object = 1
    flag: object = True
    number: object = 0.5
    blocks: object = 0
    size: object = 4
    kind: object = "A"


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (lambda c: check_ints(c, "count"), {"count": 1.5}, "Checked.count must be an integer, got 1.5."),
        (lambda c: check_ints(c, "count"), {"count": True}, "Checked.count must be an integer, got True."),
        (lambda c: check_positive_ints(c, "count"), {"count": 0}, "Checked.count must be a positive integer, got 0."),
        (lambda c: check_bools(c, "flag"), {"flag": 1}, "Checked.flag must be True or False, got 1."),
        (lambda c: check_numbers(c, "number"), {"number": "x"}, "Checked.number must be a number, got 'x'."),
        (lambda c: check_numbers(c, "number"), {"number": False}, "Checked.number must be a number, got False."),
        (lambda c: coerce_choice(c, "kind", Kind), {"kind": "C"}, "Checked.kind must be one of 'A', 'B', got 'C'."),
    ],
)
def test_validators_name_the_field_and_the_value(check, value, message):
    check(Checked())  # the defaults pass
    with pytest.raises(ConfigError) as info:
        check(Checked(**value))
    assert str(info.value) == message


def test_coerce_choice_turns_values_into_members():
    config = Checked(kind="B")
    coerce_choice(config, "kind", Kind)
    assert config.kind is Kind.B and str(config.kind) == "B" and json.dumps(config.kind) == '"B"'


@pytest.mark.parametrize(
    ("blocks", "size", "message"),
    [
        (0, 0, "Checked needs blocks or size to be non-zero (both are 0); set e.g. size=4."),
        (2, 4, "Checked takes either blocks (2) or size (4), not both"),
        (0, -4, "Checked blocks and size must not be negative (blocks=0, size=-4)."),
    ],
)
def test_count_or_size_wants_exactly_one(blocks, size, message):
    check_count_or_size(Checked(blocks=0, size=4), "blocks", "size", example="size=4")
    check_count_or_size(Checked(blocks=2, size=0), "blocks", "size", example="size=4")
    with pytest.raises(ConfigError) as info:
        check_count_or_size(Checked(blocks=blocks, size=size), "blocks", "size", example="size=4")
    assert str(info.value).startswith(message)


def test_projection_warning_points_at_the_line_that_built_the_config():
    @dataclass
    class Projected(SeededProjectionFields, TargetingFields):
        peft_type: str = "PROJECTED_TEST"

        def __post_init__(self) -> None:
            super().__post_init__()
            if not self.save_projection:
                warn_projection_not_saved(self, "proj_A and proj_B")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Projected(save_projection=False)
    (warning,) = caught
    assert warning.filename == __file__
    assert str(warning.message).startswith("Projected.save_projection=False: proj_A and proj_B are not saved")
    assert "projection_prng_key" in str(warning.message)
