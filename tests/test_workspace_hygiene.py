"""Check 6: package hygiene, from the files on disk and from each member's built wheel."""

from __future__ import annotations

import pytest

import _workspace_checks as wc

PACKAGES = wc.discover_workspace(wc.REPO_ROOT).packages


@pytest.mark.parametrize("dist", [p.dist for p in PACKAGES])
def test_package_layout_and_metadata(workspace, dist):
    problems = [p for p in wc.check_package_files(workspace) if p.package == dist]
    assert not problems, wc.format_problems(problems)


@pytest.mark.parametrize("dist", [p.dist for p in PACKAGES])
def test_wheel_holds_only_its_own_package(workspace, built_wheels, dist):
    wheel, log = built_wheels[dist]
    assert wheel is not None, f"`uv build --package {dist} --wheel` failed:\n{log[-4000:]}"
    problems = wc.check_wheel(workspace.by_dist()[dist], wheel)
    assert not problems, wc.format_problems(problems)


def test_members_found_on_disk(workspace):
    """The suite sees every folder under packages/ that has a pyproject.toml (a new member needs no edit here),
    except those the root excludes from the workspace on purpose (peft-compat: its own environment, checked by
    tests/test_peft_compat_package.py)."""
    on_disk = {p.parent.name for p in (wc.REPO_ROOT / "packages").glob("*/pyproject.toml")}
    excluded = {p.name for p in wc.excluded_packages(wc.REPO_ROOT)}
    assert {p.path.name for p in workspace.packages} == on_disk - excluded
    assert excluded <= {"peft-compat"}, f"only peft-compat may leave the workspace, found {sorted(excluded)}"
    assert "peft-core" in {p.dist for p in workspace.packages}
