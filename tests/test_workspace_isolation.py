"""Check 5: every package alone in a fresh environment (`uv run pytest -m isolation tests`).

For each member: its wheel and the wheels of the members it depends on (peft-core at least) go into a
new venv (`uv venv` + `uv pip install`) with their declared dependencies only, nothing else from the
workspace and no dev group. There: the package imports, `load_all_methods()` finds exactly the installed
packages' methods, and every method of the package (and peft-core's own save/load) survives a save/load
round trip (tests/_isolation_roundtrip.py), which catches a dependency used at run time but not declared
(deptry only reads import statements). Then the `dev` group is added and the package's own tests pass,
run with a pytest config of our own (`-c`, `--rootdir` at the package) so the root pyproject's options
don't apply. peft-core is run the same way, alone.
Wheels are built once per session and shared; packages run one after another.
"""

from __future__ import annotations

import pytest

import _workspace_checks as wc

pytestmark = pytest.mark.isolation

PACKAGES = wc.discover_workspace(wc.REPO_ROOT).packages


@pytest.mark.parametrize("dist", [p.dist for p in PACKAGES])
def test_package_works_alone_in_a_fresh_venv(workspace, built_wheels, dist, tmp_path):
    pkg = workspace.by_dist()[dist]
    needed = [p.dist for p in workspace.dep_closure(pkg, include_dev=True)] + [wc.CORE_DIST]
    broken = {d: built_wheels[d][1] for d in needed if d in built_wheels and built_wheels[d][0] is None}
    assert not broken, "wheel builds failed:\n" + "\n".join(f"{d}:\n{log[-3000:]}" for d, log in broken.items())
    wheels = {d: w for d, (w, _) in built_wheels.items() if w is not None}
    problems, log = wc.isolated_run(workspace, pkg, wheels, tmp_path)
    assert not problems, wc.format_problems(problems) + "\n\n--- log (tail) ---\n" + log[-3000:]
