"""Config fields many methods share with one meaning, declared once (names and defaults are Hugging Face PEFT's).

A method's config inherits the groups it has, next to its own fields, e.g.
`class MyConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields)`, and declares only what is its
own. A method that documents a field differently (another default, a narrower type) redeclares it;
dataclasses keep the field where the base put it. The base fields come before the method's own, so build
configs with keyword arguments (as everyone does).

Small validators (`check_*`) raise the same `ConfigError` messages every method used to spell out itself.
"""

from __future__ import annotations

import enum
import warnings
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .config import PeftConfig
from .errors import ConfigError

__all__ = [
    "TargetingFields",
    "ExcludeModulesField",
    "LayerSelectionFields",
    "FanInFanOutField",
    "SeededProjectionFields",
    "warn_projection_not_saved",
    "bias_field",
    "pattern_field",
    "check_bools",
    "check_count_or_size",
    "check_ints",
    "check_numbers",
    "check_positive_ints",
    "coerce_choice",
    "field_defaults",
]


@dataclass
class TargetingFields(PeftConfig):
    """Which modules get the adapter (`target_modules`) and which are trained in full beside it (`modules_to_save`)."""

    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to adapt: names/suffixes (list), a regex (str), 'all-linear', or None (per-model default)."},
    )
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )

    # Hugging Face PEFT keeps list values of these as sets (a config without `exclude_modules` has None there).
    set_fields = ("target_modules", "exclude_modules")


@dataclass
class ExcludeModulesField(PeftConfig):
    """`exclude_modules`: modules never adapted, even when `target_modules` matches them."""

    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules never to adapt (names/suffixes or a regex string)."}
    )


@dataclass
class LayerSelectionFields(PeftConfig):
    """`layers_to_transform` / `layers_pattern`: adapt only some layer indices of the model's layer list.

    The rules that tie them together differ between methods; the config applies them with
    `peft_core.tuners.matching.check_layer_selection`.
    """

    layers_to_transform: Optional[Union[list[int], int]] = field(
        default=None, metadata={"help": "Only adapt these layer indices."}
    )
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers', 'h') for layers_to_transform."}
    )


@dataclass
class FanInFanOutField(PeftConfig):
    """`fan_in_fan_out`: the target stores its weight as (in, out), like GPT-2's Conv1D."""

    fan_in_fan_out: bool = field(
        default=False, metadata={"help": "Weights stored (in, out), as in GPT-2's Conv1D; set automatically."}
    )


@dataclass
class SeededProjectionFields(PeftConfig):
    """Frozen random tensors drawn from a seed (`projection_prng_key`), saved with the adapter or redrawn on load."""

    projection_prng_key: int = field(default=0, metadata={"help": "Seed of the CPU generator drawing the frozen tensors."})
    save_projection: bool = field(
        default=True, metadata={"help": "Save the frozen tensors with the adapter (else redraw them from the seed on load)."}
    )


def warn_projection_not_saved(config: object, tensors: str, seed_field: str = "projection_prng_key") -> None:
    """The warning for `save_projection=False`: `tensors` (e.g. "x_A and x_B") come back from the seed only as
    reliably as torch's CPU generator does. Call it from `__post_init__`."""
    warnings.warn(
        f"{type(config).__name__}.save_projection=False: {tensors} are not saved; they are regenerated from "
        f"{seed_field} with a CPU torch.Generator when the adapter is loaded, which may not be reproducible "
        f"across platforms or torch versions. Keep save_projection=True to be safe.",
        UserWarning,
        stacklevel=4,  # the user's line that built the config
    )


def bias_field(only: str) -> Any:
    """The `bias` field (default "none"); `only` is the method's name for its own biases, e.g. "<prefix>_only".

    Validate it with `peft_core.tuners.bias.check_bias_mode(config, only)`."""
    return field(default="none", metadata={"help": f"Which biases to train and save: 'none', 'all' or {only!r}."})


def pattern_field(what: str) -> Any:
    """A `*_pattern` field: a dict from module-name regex to a per-module `what` (default empty)."""
    return field(default_factory=dict, metadata={"help": f"Regex -> {what} for the modules it matches."})


# -- validators ---------------------------------------------------------------------------------
def _bad(config: object, name: str, need: str) -> ConfigError:
    return ConfigError(f"{type(config).__name__}.{name} must be {need}, got {getattr(config, name)!r}.")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_bools(config: object, *names: str) -> None:
    """Each named field is True or False."""
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise _bad(config, name, "True or False")


def check_ints(config: object, *names: str) -> None:
    """Each named field is an integer (bools are not)."""
    for name in names:
        if not _is_int(getattr(config, name)):
            raise _bad(config, name, "an integer")


def check_positive_ints(config: object, *names: str) -> None:
    """Each named field is an integer > 0 (a count or a size)."""
    for name in names:
        value = getattr(config, name)
        if not _is_int(value) or value <= 0:
            raise _bad(config, name, "a positive integer")


def check_numbers(config: object, *names: str) -> None:
    """Each named field is an int or a float (bools are not)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(config, name, "a number")


def check_count_or_size(config: object, count: str, size: str, example: str) -> None:
    """Exactly one of two non-negative fields is set (non-zero): a number of blocks or their size, whose product
    is the layer's input size, so the other is derived per layer. `example` is a working setting to suggest."""
    name = type(config).__name__
    count_value, size_value = getattr(config, count), getattr(config, size)
    if count_value == 0 and size_value == 0:
        raise ConfigError(f"{name} needs {count} or {size} to be non-zero (both are 0); set e.g. {example}.")
    if (count_value != 0) == (size_value != 0):
        raise ConfigError(
            f"{name} takes either {count} ({count_value}) or {size} ({size_value}), not both, because "
            f"{count} * {size} = in_features; set the other one to 0."
        )
    if count_value < 0 or size_value < 0:
        raise ConfigError(f"{name} {count} and {size} must not be negative ({count}={count_value}, {size}={size_value}).")


def coerce_choice(config: object, name: str, choices: type[enum.Enum]) -> None:
    """Turn field `name` into a member of the enum `choices` (a value or a member is accepted), or raise
    `ConfigError` listing the allowed values."""
    value = getattr(config, name)
    try:
        member = choices(value)
    except ValueError:
        values = [repr(m.value) for m in choices]
        allowed = f"{', '.join(values[:-1])} or {values[-1]}" if len(values) > 1 else values[0]
        raise ConfigError(f"{type(config).__name__}.{name} must be one of {allowed}, got {value!r}.") from None
    setattr(config, name, member)


def field_defaults(config_cls: type) -> dict[str, Any]:
    """What a config class's fields hold when a user gives none (a fresh value from each `default_factory`);
    fields without a default are left out. For comparing classes and showing what a file leaves unset."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out
