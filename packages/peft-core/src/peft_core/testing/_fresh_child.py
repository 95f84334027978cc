"""The child side of the fresh-interpreter check (see `fresh.py`); run by `python -I -c ...`."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any


def _entry_point_package(method: str) -> tuple[str | None, str | None]:
    from importlib.metadata import entry_points

    for ep in entry_points(group="peft.methods"):
        if ep.name == method:
            return ep.value.split(":")[0].split(".")[0], f"{ep.name} = {ep.value}"
    return None, None


def _check(spec: dict[str, Any], problems: list[str]) -> None:
    method = spec["method"]
    package, entry_point = _entry_point_package(method)
    if package is None:
        problems.append(
            f"no installed distribution has a 'peft.methods' entry point named {method!r}; declare "
            f"[project.entry-points.\"peft.methods\"] {method} = \"<import package>\" and reinstall"
        )
        return
    if package in sys.modules:
        problems.append(f"{package} was imported before anything asked for it")
    import torch

    torch.set_num_threads(spec["threads"])
    from peft_core import PeftConfig, PeftModel, registered_methods

    if method in registered_methods():
        problems.append(f"{method!r} was registered before an adapter asked for it")
    config = PeftConfig.from_pretrained(spec["cases"][0]["dir"])
    got = f"{type(config).__module__}.{type(config).__qualname__}"
    if got != spec["config_class"]:
        problems.append(f"PeftConfig.from_pretrained returned {got}, not {spec['config_class']}")
    if package not in sys.modules:
        problems.append(f"loading the config did not import {package} through the entry point {entry_point}")

    from .harness import CheckFailed, assert_same, quiet, run
    from .runner import load_suite

    suite, _ = load_suite(method, spec["ref"])
    for item in spec["cases"]:
        case = suite.case(item["name"])
        expected = torch.load(f"{item['dir']}/expected.pt")
        try:
            loaded = quiet(lambda: PeftModel.from_pretrained(case.model.build(), item["dir"]))
            assert_same(run(loaded, case), expected["default"], case, f"case {case.name!r}, adapter 'default'")
            quiet(lambda: loaded.load_adapter(item["dir"], "other", subfolder="other"))
            loaded.set_adapter("other")
            assert_same(run(loaded, case), expected["other"], case, f"case {case.name!r}, adapter 'other'")
        except CheckFailed as exc:
            problems.append(str(exc))


def main(spec: dict[str, Any]) -> int:
    from .fresh import RESULT_MARK

    problems: list[str] = []
    try:
        _check(spec, problems)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        problems.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
    print(RESULT_MARK + json.dumps({"problems": problems}), flush=True)
    return 0
