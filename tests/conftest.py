"""Fixtures of the workspace integration suite (tests/test_workspace_*.py).

The checks live in `_workspace_checks.py` next to this file (put on sys.path here, under a name
no package uses); see its docstring. Packages are found on disk (`packages/*`), so a new member
is covered without editing anything here.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _workspace_checks as wc  # noqa: E402

ROOT = wc.REPO_ROOT

# Checks run together, once per session, in a clean interpreter (the pytest process has imported
# peft-core's test fixtures, so it can't be the "fresh" parent of the import probes).
REPORT_CHECKS = (
    "cycles",
    "import_orders",
    "layering",
    "deptry",
    "dependency_graph",
    "registration",
    "state_dicts",
)


@pytest.fixture(scope="session")
def workspace() -> wc.Workspace:
    return wc.discover_workspace(ROOT)


@pytest.fixture(scope="session")
def workspace_report() -> dict:
    """Problems of checks 1-3 on the real workspace: {"problems": {check: [Problem]}, "seconds": {...}}."""
    return wc.run_checks_subprocess(ROOT, REPORT_CHECKS)


@pytest.fixture(scope="session")
def built_wheels(tmp_path_factory: pytest.TempPathFactory, workspace: wc.Workspace) -> dict[str, tuple[Path | None, str]]:
    """Every member's wheel, built once per session: dist -> (wheel or None, build log)."""
    out = tmp_path_factory.mktemp("wheels")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda p: (p.dist, wc.build_wheel(p, out / p.dist)), workspace.packages)
        return dict(results)
