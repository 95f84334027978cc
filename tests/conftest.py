"""Fixtures of the workspace integration suite (tests/test_workspace_*.py).

The checks live in `_workspace_checks.py` next to this file (put on sys.path here, under a name
no package uses); see its docstring. Packages are found on disk (`packages/*`), so a new member
is covered without editing anything here.

The slow session fixtures (the report of checks 1-3 and the negative scenarios, which run in
interpreters of their own, and the wheels) start in background threads as soon as collection
shows that a selected test needs them, so they overlap with each other and with other tests.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _workspace_checks as wc  # noqa: E402
import _workspace_scenarios as scenarios  # noqa: E402

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

_executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="workspace-suite")
_started: dict[str, Future] = {}
_temp_dirs: list[Path] = []


def _background(name: str, fn: Callable[[], Any]) -> Future:
    if name not in _started:
        _started[name] = _executor.submit(fn)
    return _started[name]


def _report() -> dict:
    return wc.run_checks_subprocess(ROOT, REPORT_CHECKS)


def _temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _temp_dirs.append(path)
    return path


def _wheels() -> dict[str, tuple[Path | None, str]]:
    return wc.build_wheels(wc.discover_workspace(ROOT), _temp_dir("peft-ws-wheels-"))


def _negatives() -> dict:
    return scenarios.run_scenarios(_temp_dir("peft-ws-negative-"))


@pytest.hookimpl(trylast=True)  # after `-m` / `-k` deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    used = {name for item in items for name in getattr(item, "fixturenames", ())}
    if "built_wheels" in used:
        _background("wheels", _wheels)
    if "workspace_report" in used:
        _background("report", _report)
    if "negative_reports" in used:
        _background("negatives", _negatives)


def pytest_unconfigure(config: pytest.Config) -> None:
    wc.kill_running()  # an interrupted session must not wait for a background report
    _executor.shutdown(wait=True, cancel_futures=True)
    for path in _temp_dirs:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def workspace() -> wc.Workspace:
    return wc.discover_workspace(ROOT)


@pytest.fixture(scope="session")
def workspace_report() -> dict:
    """Problems of checks 1-3 on the real workspace: {"problems": {check: [Problem]}, "seconds": {...}}."""
    return _background("report", _report).result()


@pytest.fixture(scope="session")
def built_wheels() -> dict[str, tuple[Path | None, str]]:
    """Every member's wheel (`uv build --all-packages --wheel`), built once per session: dist -> (wheel or None, log)."""
    return _background("wheels", _wheels).result()


@pytest.fixture(scope="session")
def negative_reports() -> dict[str, tuple[wc.FakeWorkspace, list[wc.Problem]]]:
    """Every negative scenario's (workspace, problems), see tests/_workspace_scenarios.py."""
    return _background("negatives", _negatives).result()
