"""Checks of configs and of the declaration itself: bad values are refused with `ConfigError` (when
constructed and when read from a file), a config that matches nothing leaves the model untouched."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ..errors import ConfigError, PeftError
from ..registry import get_peft_method
from .declare import Case
from .harness import CheckFailed, Context, adapter_modules, assert_same, base_output, quiet, run

INIT_FLAG_PREFIX = "init"


def generic_bad_values(config: Any) -> list[dict[str, Any]]:
    """Values every config of this shape must refuse: an unknown task type, a negative rank, dropouts
    outside [0, 1)."""
    fields = {f.name for f in dataclasses.fields(config) if f.init}
    bad: list[dict[str, Any]] = [{"task_type": "NOT_A_TASK"}]
    r = getattr(config, "r", None)
    if "r" in fields and isinstance(r, int) and not isinstance(r, bool):
        bad.append({"r": -1})
    hints = typing.get_type_hints(type(config))
    for name in sorted(fields):
        hint = hints.get(name)
        if name.endswith("dropout") and (hint is float or float in typing.get_args(hint)):
            bad += [{name: 1.5}, {name: -0.5}]
    return bad


def _wrong_type(config: Any) -> dict[str, Any]:
    """A field given a value of the wrong JSON type, as a hostile file would."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if f.init and hints.get(f.name) is int:
            return {f.name: "not a number"}
    return {"task_type": 17}


def check_bad_config(ctx: Context, case: Case) -> None:
    """Each bad value is refused with ConfigError, both by the constructor and from adapter_config.json;
    target_modules that match nothing are refused and the base model is left as it was."""
    config = case.config()
    cls = type(config)
    fields = {f.name for f in dataclasses.fields(config) if f.init}
    good = {k: v for k, v in config.to_dict().items() if k in fields}
    for bad in [*generic_bad_values(config), *ctx.suite.bad_values, *case.bad_values]:
        _expect_config_error(lambda b=bad: dataclasses.replace(config, **b), f"{cls.__name__} with {bad}")
        _expect_config_error(lambda b=bad: cls.from_dict({**good, **b}), f"{cls.__name__}.from_dict with {bad} (a file)")
    wrong_type = _wrong_type(config)
    _expect_config_error(lambda: cls.from_dict({**good, **wrong_type}), f"{cls.__name__}.from_dict with {wrong_type}")
    if "target_modules" not in fields or config.is_prompt_learning:
        return
    from ..mapping import get_peft_model

    base = case.model.build()
    expected = base_output(case)
    try:
        missing = dataclasses.replace(config, target_modules=["no_such_module_anywhere"])
    except ConfigError:
        return  # the method's own checks refuse it already (e.g. a sub-list that must be in the targets)
    try:
        quiet(lambda: get_peft_model(base, missing))
    except PeftError:
        pass
    except Exception as exc:  # noqa: BLE001 - the wrong exception type is the finding
        raise CheckFailed(f"target_modules matching nothing raised {type(exc).__name__} ({exc}), not a PeftError") from exc
    else:
        raise CheckFailed("get_peft_model with target_modules matching nothing succeeded")
    left = adapter_modules(base)
    if left:
        raise CheckFailed(f"a refused get_peft_model left adapter layers in the base model: {left[:5]}")
    assert_same(run(base, case), expected, case, "the base model's output after a refused get_peft_model")


def _expect_config_error(action, what: str) -> None:
    try:
        quiet(action)
    except ConfigError:
        return
    except Exception as exc:  # noqa: BLE001 - the wrong exception type is the finding
        raise CheckFailed(f"{what}: raised {type(exc).__name__} ({exc}), not peft_core.ConfigError") from exc
    raise CheckFailed(f"{what}: accepted; it must raise peft_core.ConfigError")


def check_declaration(ctx: Context) -> None:
    """The declaration itself: the method is registered, cases build its config class, names are
    unique, and a config with an `init*` switch declares `random_init`."""
    suite = ctx.suite
    method = get_peft_method(suite.method)
    if not suite.cases:
        raise CheckFailed(f"the conformance declaration of {suite.method!r} has no cases")
    names = [c.name for c in suite.cases]
    if len(set(names)) != len(names):
        raise CheckFailed(f"case names are not unique: {names}")
    for case in suite.cases:
        config = case.config()
        if type(config) is not method.config_cls:
            raise CheckFailed(
                f"case {case.name!r} builds a {type(config).__name__}, not {suite.method!r}'s {method.config_cls.__name__}"
            )
    switches = {
        f.name: f.default for f in dataclasses.fields(method.config_cls)
        if f.name.startswith(INIT_FLAG_PREFIX) and isinstance(f.default, bool)
    }
    if switches and suite.random_init is None:
        name, default = next(iter(switches.items()))
        raise CheckFailed(
            f"{method.config_cls.__name__} has init switches {sorted(switches)} but the declaration gives no "
            f"random_init; declare the overrides that make a fresh adapter non-trivial, e.g. "
            f"random_init={{{name!r}: {not default}}}"
        )
