"""Check 1: no import cycles, and every module imports first in a fresh interpreter.

The static part builds grimp's import graph of every workspace package at once and looks for
cycles made of import-time imports (between modules of one package or across packages). The
dynamic part imports each module first in a workspace-fresh interpreter (see
`_workspace_checks.check_import_orders` for why it forks), which catches cycles that only fail
in one import order.
"""

from __future__ import annotations

import pytest

import _workspace_checks as wc

PACKAGES = wc.discover_workspace(wc.REPO_ROOT).packages


def test_no_import_cycles(workspace_report):
    problems = wc.problems_of(workspace_report, "cycles")
    assert not problems, wc.format_problems(problems)


@pytest.mark.parametrize("dist", [p.dist for p in PACKAGES])
def test_every_module_imports_first_in_a_fresh_interpreter(workspace_report, dist):
    problems = wc.problems_of(workspace_report, "import_orders", dist)
    assert not problems, wc.format_problems(problems)


def test_import_probes_cover_every_module(workspace):
    """Guard against the probe silently skipping modules: each module is some order's first import.

    (`__main__` modules are left out: importing one runs the program.)
    """
    firsts = {order[0] for _, order in wc.import_order_jobs(workspace)}
    modules = {m for p in workspace.packages for m in p.modules() if not m.endswith(".__main__")}
    assert modules <= firsts
    assert modules, "no module found under packages/*/src"
