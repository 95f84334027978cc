"""Workspace integration checks: every package under the workspace members, found on disk.

Each ``check_*`` function takes a :class:`Workspace` (a root plus the packages found there) and
returns a list of :class:`Problem`; an empty list means the check passed. The same functions run
on the real workspace (``tests/test_workspace_*.py``) and on small broken workspaces written to a
temp folder (``tests/test_workspace_negative.py``), which proves that each check catches what it
claims to. Every problem says what is wrong, where (package, module, file) and how to fix it.

Checks that must see a fresh interpreter (import orders, registration) run their probes as
"jobs" through :func:`run_fresh`: on Linux the process first imports the third-party packages the
workspace imports at import time (torch, ...), then ``fork()``s one child per job. A child has
imported nothing from the workspace, so it behaves like a fresh ``python -c "import X"`` that does
not pay torch's 3-4 s import each time. Elsewhere (or with ``PEFT_WS_SPAWN=1``) each job is its own
``python`` subprocess: same results, slower.

The checks live in modules of their own, this one re-exporting their names (tests use `wc.<name>`):
`_ws_model` (packages on disk, `Problem`), `_ws_jobs` (fresh-interpreter jobs and check runs in a clean
interpreter), `_ws_imports` (check 1), `_ws_layering` (check 2), `_ws_registration` (check 3),
`_ws_state_dicts` (check 3b), `_ws_isolation` (check 5), `_ws_hygiene` (check 6) and `_ws_fake` (throwaway
workspaces for the negative proofs). This module adds `CHECKS`, `run_checks` and the command line.

Run as a script, the module runs checks on a workspace in a clean interpreter and writes the
problems as JSON (``python _workspace_checks.py check --root R --out F``); that is how the tests
call it, so the pytest process (which has imported peft-core's test fixtures) never pollutes it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

# The checks, one module each; their names are re-exported here, the one module tests import (`wc.<name>`).
from _ws_fake import FakeWorkspace, method_source  # noqa: F401
from _ws_hygiene import build_wheel, build_wheels, check_package_files, check_wheel  # noqa: F401
from _ws_imports import (  # noqa: F401
    ImportGraph,
    _strongly_connected,
    check_import_cycles,
    check_import_orders,
    import_order_jobs,
)
from _ws_isolation import isolated_run  # noqa: F401
from _ws_jobs import (  # noqa: F401
    JOBS,
    _short_error,
    child_env,
    kill_running,
    run_checks_subprocess,
    run_fresh,
)
from _ws_layering import (  # noqa: F401
    check_declared_dependencies,
    check_dependency_graph,
    check_layering,
)
from _ws_model import (  # noqa: F401
    CORE_DIST,
    CORE_IMPORT,
    ENTRY_POINT_GROUP,
    REPO_ROOT,
    Package,
    Problem,
    Workspace,
    _requirement,
    discover_workspace,
    excluded_packages,
    format_problems,
    normalize,
    problems_of,
)
from _ws_registration import check_registration  # noqa: F401
from _ws_state_dicts import check_state_dicts  # noqa: F401

# --------------------------------------------------------------------------------------------------
# Running the checks in a clean interpreter
# --------------------------------------------------------------------------------------------------

CHECKS: dict[str, Callable[..., list[Problem]]] = {
    "cycles": check_import_cycles,
    "import_orders": check_import_orders,
    "layering": check_layering,
    "deptry": check_declared_dependencies,
    "dependency_graph": check_dependency_graph,
    "registration": check_registration,
    "state_dicts": check_state_dicts,
    "package_files": check_package_files,
}
GRAPH_CHECKS = {"cycles", "import_orders", "layering", "registration", "state_dicts"}


def run_checks(root: Path | str, checks: Sequence[str], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `checks` on the workspace at `root` in this process; returns problems and timings per check."""
    options = options or {}
    ws = discover_workspace(root)
    out: dict[str, Any] = {"problems": {}, "seconds": {}, "packages": [p.dist for p in ws.packages]}
    graph = None
    for name in checks:
        started = time.perf_counter()
        kwargs: dict[str, Any] = dict(options.get(name, {}))
        try:
            if name in GRAPH_CHECKS:
                graph = graph or ImportGraph(ws)
                kwargs["graph"] = graph
            problems = CHECKS[name](ws, **kwargs)
        except Exception as exc:
            problems = [
                Problem("check-crashed", "workspace", f"check {name}", f"The check itself raised:\n{_short_error(exc, 12)}",
                        "This is a bug in tests/_workspace_checks.py or an unreadable package; read the traceback.")
            ]
        out["problems"][name] = [dataclasses.asdict(p) for p in problems]
        out["seconds"][name] = round(time.perf_counter() - started, 2)
    return out


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    command, rest = argv[0], list(argv[1:])
    if command == "serve":
        spec = json.loads(Path(rest[0]).read_text())
        results = run_fresh(
            [tuple(j) for j in spec["jobs"]],
            preimport=spec["preimport"],
            forbidden=spec["forbidden"],
            workers=spec["workers"],
            timeout=spec["timeout"],
        )
        Path(rest[1]).write_text(json.dumps(results, default=str))
        return 0
    if command == "job":
        spec = json.loads(Path(rest[0]).read_text())
        try:
            result = {"ok": True, "value": JOBS[spec["name"]](**spec["kwargs"])}
        except BaseException as exc:
            result = {"ok": False, "error": _short_error(exc, 12)}
        Path(rest[1]).write_text(json.dumps(result, default=str))
        return 0
    if command == "check":
        import argparse

        parser = argparse.ArgumentParser(prog="_workspace_checks.py check")
        parser.add_argument("--root", default=str(REPO_ROOT))
        parser.add_argument("--out")
        parser.add_argument("--checks", default=",".join(CHECKS))
        parser.add_argument("--options", default="{}")
        args = parser.parse_args(rest)
        data = run_checks(args.root, [c for c in args.checks.split(",") if c], json.loads(args.options))
        if args.out:
            Path(args.out).write_text(json.dumps(data, indent=1))
        else:
            for name, problems in data["problems"].items():
                print(f"== {name} ({data['seconds'][name]}s)")
                print(format_problems([Problem(**p) for p in problems]))
        return 0
    print(f"unknown command {command!r}; use check, serve or job")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
