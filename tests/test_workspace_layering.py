"""Check 2: layering and declared dependencies.

- peft-core imports no method package (grimp, including imports inside functions);
- a method package imports another workspace package only when its pyproject declares it;
- third-party imports match each member's declared dependencies (deptry, run per member);
- the dependencies among members (from the pyprojects) form no cycle.
"""

from __future__ import annotations

import pytest

import _workspace_checks as wc

PACKAGES = wc.discover_workspace(wc.REPO_ROOT).packages


def test_core_imports_no_method_package(workspace_report):
    problems = [p for p in wc.problems_of(workspace_report, "layering") if p.kind == "core-imports-method"]
    assert not problems, wc.format_problems(problems)


@pytest.mark.parametrize("dist", [p.dist for p in PACKAGES])
def test_workspace_imports_are_declared(workspace_report, dist):
    problems = [p for p in wc.problems_of(workspace_report, "layering", dist) if p.kind != "core-imports-method"]
    assert not problems, wc.format_problems(problems)


@pytest.mark.parametrize("dist", [p.dist for p in PACKAGES])
def test_third_party_imports_are_declared(workspace_report, dist):
    problems = wc.problems_of(workspace_report, "deptry", dist)
    assert not problems, wc.format_problems(problems)


def test_member_dependency_graph_is_acyclic(workspace_report):
    problems = wc.problems_of(workspace_report, "dependency_graph")
    assert not problems, wc.format_problems(problems)
