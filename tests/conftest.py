"""Fixtures of the workspace integration suite (tests/test_workspace_*.py).

The checks live in `_workspace_checks.py` next to this file (put on sys.path here, under a name
no package uses); see its docstring. Packages are found on disk (`packages/*`), so a new member
is covered without editing anything here.

The two slow session fixtures (the report of checks 1-3, which runs in its own interpreter, and
the wheels) start in background threads as soon as collection shows that a selected test needs
them, so they overlap with each other and with the tests that run first.
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

_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="workspace-suite")
_started: dict[str, Future] = {}
_wheel_dir: list[Path] = []


def _background(name: str, fn: Callable[[], Any]) -> Future:
    if name not in _started:
        _started[name] = _executor.submit(fn)
    return _started[name]


def _report() -> dict:
    return wc.run_checks_subprocess(ROOT, REPORT_CHECKS)


def _wheels() -> dict[str, tuple[Path | None, str]]:
    out = Path(tempfile.mkdtemp(prefix="peft-ws-wheels-"))
    _wheel_dir.append(out)
    ws = wc.discover_workspace(ROOT)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(lambda p: (p.dist, wc.build_wheel(p, out / p.dist)), ws.packages))


@pytest.hookimpl(trylast=True)  # after `-m` / `-k` deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    used = {name for item in items for name in getattr(item, "fixturenames", ())}
    if "built_wheels" in used:
        _background("wheels", _wheels)
    if "workspace_report" in used:
        _background("report", _report)


def pytest_unconfigure(config: pytest.Config) -> None:
    wc.kill_running()  # an interrupted session must not wait for a background report
    _executor.shutdown(wait=True, cancel_futures=True)
    for path in _wheel_dir:
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
    """Every member's wheel (`uv build --package X --wheel`), built once per session: dist -> (wheel or None, log)."""
    return _background("wheels", _wheels).result()
