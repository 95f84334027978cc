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

Run as a script, the module runs checks on a workspace in a clean interpreter and writes the
problems as JSON (``python _workspace_checks.py check --root R --out F``); that is how the tests
call it, so the pytest process (which has imported peft-core's test fixtures) never pollutes it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CORE_DIST = "peft-core"
CORE_IMPORT = "peft_core"
ENTRY_POINT_GROUP = "peft.methods"
HERE = Path(__file__).resolve()
REPO_ROOT = HERE.parents[1]  # the workspace this file belongs to

# --------------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------------


@dataclass
class Problem:
    """One finding. ``kind`` is a stable short code (tests match on it); the rest is for people."""

    kind: str
    package: str
    where: str
    what: str
    fix: str

    def __str__(self) -> str:
        what = textwrap.indent(self.what, "      ").lstrip()
        fix = textwrap.indent(self.fix, "      ").lstrip()
        return f"[{self.kind}] {self.package} -- {self.where}\n  what: {what}\n  fix:  {fix}"


def problems_of(report: dict[str, Any], check: str, dist: str | None = None) -> list[Problem]:
    """The problems of one check in a report from run_checks_subprocess, optionally only those naming `dist`."""
    problems = report["problems"][check]
    if dist is None:
        return problems
    return [p for p in problems if dist in [d.strip() for d in p.package.split(",")]]


def format_problems(problems: Sequence[Problem]) -> str:
    if not problems:
        return "no problems"
    body = "\n\n".join(str(p) for p in problems)
    return f"{len(problems)} problem(s):\n\n{body}"


# --------------------------------------------------------------------------------------------------
# The workspace on disk
# --------------------------------------------------------------------------------------------------


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name (``Peft_Core`` -> ``peft-core``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(text: str):
    from packaging.requirements import Requirement

    return Requirement(text)


@dataclass
class Package:
    """One workspace member, read from its folder (nothing is imported)."""

    root: Path
    path: Path
    pyproject: dict[str, Any]

    @property
    def project(self) -> dict[str, Any]:
        return self.pyproject.get("project", {})

    @property
    def name(self) -> str:
        return self.project.get("name") or self.path.name

    @property
    def dist(self) -> str:
        return normalize(self.name)

    @property
    def rel(self) -> str:
        try:
            return self.path.relative_to(self.root).as_posix()
        except ValueError:
            return self.path.as_posix()

    def relfile(self, path: Path | str) -> str:
        path = Path(path)
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    @property
    def version(self) -> str | None:
        return self.project.get("version")

    @property
    def is_core(self) -> bool:
        return self.dist == CORE_DIST

    @property
    def src(self) -> Path:
        return self.path / "src"

    @property
    def import_names(self) -> list[str]:
        """Top-level import packages: ``src/<name>/__init__.py``."""
        if not self.src.is_dir():
            return []
        return sorted(p.parent.name for p in self.src.glob("*/__init__.py"))

    def modules(self) -> dict[str, Path]:
        """Every module of the package: dotted name -> file."""
        out: dict[str, Path] = {}
        for top in self.import_names:
            base = self.src / top
            for file in sorted(base.rglob("*.py")):
                rel = file.relative_to(self.src).with_suffix("")
                parts = list(rel.parts)
                if parts[-1] == "__init__":
                    parts.pop()
                # skip folders that are not packages (no __init__ on the way down)
                if all((self.src.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))):
                    out[".".join(parts)] = file
        return out

    @property
    def requirements(self) -> list:
        return [_requirement(r) for r in self.project.get("dependencies", [])]

    @property
    def optional_requirements(self) -> dict[str, list]:
        extras = self.project.get("optional-dependencies", {}) or {}
        return {k: [_requirement(r) for r in v] for k, v in extras.items()}

    def dependency_group(self, group: str = "dev") -> list[str]:
        groups = self.pyproject.get("dependency-groups", {}) or {}
        out: list[str] = []
        seen: set[str] = set()

        def walk(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for entry in groups.get(name, []):
                if isinstance(entry, dict) and "include-group" in entry:
                    walk(entry["include-group"])
                elif isinstance(entry, str):
                    out.append(entry)

        walk(group)
        return out

    @property
    def entry_points(self) -> dict[str, str]:
        eps = self.project.get("entry-points", {}) or {}
        return dict(eps.get(ENTRY_POINT_GROUP, {}) or {})

    @property
    def uv_sources(self) -> dict[str, Any]:
        return {normalize(k): v for k, v in ((self.pyproject.get("tool", {}).get("uv", {}) or {}).get("sources", {}) or {}).items()}

    def file(self, name: str = "pyproject.toml") -> str:
        return f"{self.rel}/{name}"

    def module_file(self, module: str) -> str:
        path = self.modules().get(module)
        return self.relfile(path) if path else module


@dataclass
class Workspace:
    root: Path
    packages: list[Package]

    def by_dist(self) -> dict[str, Package]:
        return {p.dist: p for p in self.packages}

    def by_import(self) -> dict[str, Package]:
        return {name: p for p in self.packages for name in p.import_names}

    @property
    def import_names(self) -> list[str]:
        return sorted(self.by_import())

    @property
    def method_packages(self) -> list[Package]:
        return [p for p in self.packages if not p.is_core]

    def member_deps(self, package: Package, include_dev: bool = False) -> list[Package]:
        """Workspace members that `package` declares as runtime dependencies (or dev ones too)."""
        members = self.by_dist()
        names = [r.name for r in package.requirements]
        if include_dev:
            names += [_requirement(r).name for r in package.dependency_group("dev")]
        out: list[Package] = []
        for name in names:
            dep = members.get(normalize(name))
            if dep is not None and dep is not package and dep not in out:
                out.append(dep)
        return out

    def dep_closure(self, package: Package, include_dev: bool = False) -> list[Package]:
        """`package` and every member it depends on, transitively (dev group only at the top)."""
        out = [package]
        todo = self.member_deps(package, include_dev=include_dev)
        while todo:
            dep = todo.pop(0)
            if dep in out:
                continue
            out.append(dep)
            todo.extend(self.member_deps(dep))
        return out

    def module_index(self) -> dict[str, tuple[Package, Path]]:
        return {mod: (pkg, path) for pkg in self.packages for mod, path in pkg.modules().items()}


def excluded_packages(root: Path | str) -> list[Path]:
    """Folders under the members' globs that the root's `[tool.uv.workspace] exclude` leaves out."""
    root = Path(root).resolve()
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    ws = config.get("tool", {}).get("uv", {}).get("workspace", {}) or {}
    return sorted(p.resolve() for pattern in ws.get("exclude", []) for p in root.glob(pattern) if p.is_dir())


def discover_workspace(root: Path | str) -> Workspace:
    """Every member matched by the root's `[tool.uv.workspace] members` globs (default `packages/*`)."""
    root = Path(root).resolve()
    pyproject = root / "pyproject.toml"
    config: dict[str, Any] = {}
    if pyproject.is_file():
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    ws = config.get("tool", {}).get("uv", {}).get("workspace", {}) or {}
    members = ws.get("members") or ["packages/*"]
    excluded = {p.resolve() for pattern in ws.get("exclude", []) for p in root.glob(pattern)}
    seen: set[Path] = set()
    packages: list[Package] = []
    for pattern in members:
        for path in sorted(root.glob(pattern)):
            path = path.resolve()
            if path in seen or path in excluded or not (path / "pyproject.toml").is_file():
                continue
            seen.add(path)
            data = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
            packages.append(Package(root=root, path=path, pyproject=data))
    packages.sort(key=lambda p: (not p.is_core, p.dist))
    return Workspace(root=root, packages=packages)


# --------------------------------------------------------------------------------------------------
# Fresh-interpreter jobs
# --------------------------------------------------------------------------------------------------

JOBS: dict[str, Callable[..., Any]] = {}


def job(fn: Callable[..., Any]) -> Callable[..., Any]:
    JOBS[fn.__name__] = fn
    return fn


def _short_error(exc: BaseException, limit: int = 6) -> str:
    """The exception and its innermost frames, without importlib's and this harness's own frames."""
    importlib_dir = os.path.dirname(importlib.__file__)

    def interesting(filename: str) -> bool:
        return not (
            filename.startswith("<frozen") or filename == str(HERE) or filename.startswith(importlib_dir + os.sep)
        )

    frames = [
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__) if interesting(f.filename)
    ][-limit:]
    head = f"{type(exc).__name__}: {exc}"
    return head + ("\n" + "\n".join(frames) if frames else "")


def _loaded(prefixes: Iterable[str]) -> list[str]:
    prefixes = tuple(prefixes)
    return sorted(m for m in sys.modules if m.split(".")[0] in prefixes)


def _fork_available() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux") and not os.environ.get("PEFT_WS_SPAWN")


def child_env(pythonpath: Sequence[Path | str] = ()) -> dict[str, str]:
    """Environment for the interpreters this module starts: `pythonpath` first on PYTHONPATH.

    OMP_NUM_THREADS defaults to 1 (the probes run in parallel on tiny tensors). With PYTHONDONTWRITEBYTECODE set (and no PYTHONPYCACHEPREFIX), every interpreter would compile
    torch's ~1000 modules from source (~5 s each time). Bytecode then goes to a cache folder in the
    temp dir instead, so nothing is written next to the sources and later interpreters start fast.
    """
    env = dict(os.environ)
    if pythonpath:
        parts = [str(p) for p in pythonpath] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(parts)
    # Probes run two at a time on small tensors: one thread each beats OpenMP threads spinning for cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
        del env["PYTHONDONTWRITEBYTECODE"]
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), f"peft-ws-pycache-{uid}")
    return env


def run_fresh(
    jobs: Sequence[tuple[str, dict[str, Any]]],
    *,
    preimport: Sequence[str] = (),
    forbidden: Sequence[str] = (),
    workers: int = 2,
    timeout: float = 300.0,
) -> list[dict[str, Any]]:
    """Run each ``(job name, kwargs)`` in an interpreter where no `forbidden` module was imported.

    Returns one ``{"ok": bool, "value": ..., "error": str}`` per job, in order.
    `preimport` names third-party packages to import once before forking (never workspace ones).
    """
    if not jobs:
        return []
    if not _fork_available():
        return _run_spawned(jobs, workers, timeout)
    if _loaded(forbidden):
        # This process already imported workspace code (e.g. pytest): fork from a clean server.
        return _run_server(jobs, preimport, forbidden, workers, timeout)
    for name in preimport:
        if name.split(".")[0] in forbidden:
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # an optional dependency: the job will fail or skip on its own
            pass
    if _loaded(forbidden):  # a third-party package imported workspace code: don't trust forks
        return _run_spawned(jobs, workers, timeout)
    return _run_forked(jobs, workers, timeout)


def _run_forked(jobs: Sequence[tuple[str, dict[str, Any]]], workers: int, timeout: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    pending = list(enumerate(jobs))
    running: dict[int, tuple[int, str, str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="peft-ws-jobs-") as tmp:
        while pending or running:
            while pending and len(running) < workers:
                index, (name, kwargs) = pending.pop(0)
                out = os.path.join(tmp, f"{index}.json")
                log = os.path.join(tmp, f"{index}.log")
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:  # child: never returns
                    _child_main(name, kwargs, out, log)
                running[pid] = (index, out, log, time.monotonic())
            time.sleep(0.005)
            for pid in list(running):
                index, out, log, started = running[pid]
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    if time.monotonic() - started > timeout:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        del running[pid]
                        results[index] = {"ok": False, "error": f"timed out after {timeout:.0f}s\n{_tail(log)}"}
                    continue
                del running[pid]
                results[index] = _read_result(out, log, f"exit status {status}")
    return [r if r is not None else {"ok": False, "error": "no result"} for r in results]


def _tail(path: str, limit: int = 3000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-limit:]
    except OSError:
        return ""


def _read_result(out: str, log: str, how: str) -> dict[str, Any]:
    try:
        with open(out, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"ok": False, "error": f"the job process died ({how}) without a result; its output:\n{_tail(log)}"}


def _child_main(name: str, kwargs: dict[str, Any], out: str, log: str) -> None:
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            result = {"ok": True, "value": JOBS[name](**kwargs)}
        except BaseException as exc:
            result = {"ok": False, "error": _short_error(exc, limit=12)}
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, default=str)
    finally:
        os._exit(0)


def _run_server(jobs, preimport, forbidden, workers, timeout) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="peft-ws-server-") as tmp:
        spec = Path(tmp, "jobs.json")
        out = Path(tmp, "results.json")
        spec.write_text(
            json.dumps(
                {
                    "jobs": list(jobs),
                    "preimport": list(preimport),
                    "forbidden": list(forbidden),
                    "workers": workers,
                    "timeout": timeout,
                }
            )
        )
        proc = subprocess.run(
            [sys.executable, str(HERE), "serve", str(spec), str(out)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout * max(1, len(jobs)),
        )
        if proc.returncode != 0 or not out.is_file():
            error = f"job server failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
            return [{"ok": False, "error": error} for _ in jobs]
        return json.loads(out.read_text())


def _run_spawned(jobs, workers, timeout) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="peft-ws-job-") as tmp:
            spec = Path(tmp, "job.json")
            out = Path(tmp, "result.json")
            spec.write_text(json.dumps({"name": item[0], "kwargs": item[1]}))
            try:
                proc = subprocess.run(
                    [sys.executable, str(HERE), "job", str(spec), str(out)],
                    env=child_env(),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                return {"ok": False, "error": f"timed out after {timeout:.0f}s"}
            if not out.is_file():
                return {"ok": False, "error": f"job process died (exit {proc.returncode}):\n{proc.stderr[-3000:]}"}
            return json.loads(out.read_text())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


# --------------------------------------------------------------------------------------------------
# The import graph (grimp)
# --------------------------------------------------------------------------------------------------


@dataclass
class ImportEdge:
    importer: str
    imported: str
    lines: list[tuple[int, str, bool]]  # (line number, source, at import time?)

    @property
    def at_import_time(self) -> bool:
        return any(now for _, _, now in self.lines)


class ImportGraph:
    """grimp's graph of every workspace package, with each import classified as import-time or deferred.

    grimp finds the imports (including ones inside functions; `if TYPE_CHECKING:` imports are
    excluded). An import inside a function body runs only when the function is called, so it
    can't take part in an import-time cycle; we look up each import's line in the module's syntax
    tree to tell the two apart.
    """

    def __init__(self, ws: Workspace) -> None:
        import grimp

        self.ws = ws
        self.index = ws.module_index()
        names = ws.import_names
        self.graph = grimp.build_graph(
            *names, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
        ) if names else None
        self._deferred_lines: dict[str, set[int]] = {}
        self.edges: dict[tuple[str, str], ImportEdge] = {}
        if self.graph is None:
            return
        for importer in sorted(self.graph.modules):
            if importer not in self.index:
                continue
            for imported in sorted(self.graph.find_modules_directly_imported_by(importer)):
                details = self.graph.get_import_details(importer=importer, imported=imported)
                deferred = self._deferred(importer)
                lines = [
                    (d["line_number"], d["line_contents"], d["line_number"] not in deferred) for d in details
                ]
                self.edges[(importer, imported)] = ImportEdge(importer, imported, lines)

    def _deferred(self, module: str) -> set[int]:
        """Line numbers of import statements inside function bodies of `module`."""
        cached = self._deferred_lines.get(module)
        if cached is not None:
            return cached
        lines: set[int] = set()
        path = self.index[module][1]
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError):
            tree = None
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    for inner in ast.walk(node):
                        if isinstance(inner, (ast.Import, ast.ImportFrom)):
                            lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
        self._deferred_lines[module] = lines
        return lines

    def workspace_edges(self) -> list[ImportEdge]:
        return [e for (a, b), e in self.edges.items() if b in self.index]

    def import_time_externals(self) -> list[str]:
        """Third-party top-level packages some workspace module imports at import time."""
        stdlib = set(getattr(sys, "stdlib_module_names", ()))
        out = {
            e.imported.split(".")[0]
            for e in self.edges.values()
            if e.imported not in self.index and e.at_import_time
        }
        return sorted(n for n in out if n not in stdlib and n not in self.ws.by_import())

    def describe_edge(self, importer: str, imported: str, import_time_only: bool = False) -> str:
        edge = self.edges.get((importer, imported))
        pkg, path = self.index[importer]
        if edge is None:
            return f"{pkg.relfile(path)}"
        lines = [l for l in edge.lines if l[2] or not import_time_only] or edge.lines
        return "; ".join(f"{pkg.relfile(path)}:{n}: {src.strip()}" for n, src, _ in lines)


def _strongly_connected(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns components with more than one node (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(successors(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for succ in it:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(successors(succ)))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1 or node in set(successors(node)):
                    out.append(sorted(comp))
    return out


# --------------------------------------------------------------------------------------------------
# Check 1: import cycles
# --------------------------------------------------------------------------------------------------


def check_import_cycles(ws: Workspace, graph: ImportGraph | None = None) -> list[Problem]:
    """Module-level import cycles in and between workspace packages (grimp graph).

    Only imports that run at import time count: a cycle closed by an import inside a function is
    the accepted way to break one (peft-core does it in a few places) and can't fail on import.
    """
    import grimp

    graph = graph or ImportGraph(ws)
    if graph.graph is None:
        return []
    # A copy of grimp's graph that holds only import-time imports between workspace modules.
    pruned = grimp.ImportGraph()
    for module in graph.index:
        pruned.add_module(module)
    for edge in graph.workspace_edges():
        if edge.at_import_time:
            pruned.add_import(importer=edge.importer, imported=edge.imported)

    problems: list[Problem] = []
    for component in _strongly_connected(graph.index, pruned.find_modules_directly_imported_by):
        members = set(component)
        best: tuple[str, ...] | None = None
        for a in component:
            for b in pruned.find_modules_directly_imported_by(a):
                if b not in members:
                    continue
                chain = (a,) if a == b else pruned.find_shortest_chain(importer=b, imported=a)
                if chain is None:
                    continue
                cycle = (a,) + tuple(chain) if a != b else (a, a)
                if best is None or len(cycle) < len(best):
                    best = cycle
        assert best is not None
        steps = []
        for position, (importer, imported) in enumerate(itertools.pairwise(best)):
            arrow = "   " if position == 0 else "-> "
            steps.append(f"{arrow}{importer}   ({graph.describe_edge(importer, imported, True)})")
        pkg = graph.index[best[0]][0]
        packages = sorted({graph.index[m][0].dist for m in best})
        problems.append(
            Problem(
                kind="import-cycle",
                package=", ".join(packages),
                where=f"{pkg.relfile(graph.index[best[0]][1])} (module {best[0]})",
                what=(
                    f"Import cycle of {len(best) - 1} module(s), every import running at import time:\n"
                    + "\n".join(steps)
                    + f"\n-> {best[0]}"
                    + (f"\n({len(component)} modules are tangled in this cycle group: {', '.join(component)})"
                       if len(component) > len(best) - 1 else "")
                ),
                fix=(
                    "Break one of these imports: move the definitions both modules need into a third module "
                    "that imports neither, or import inside the function that uses the name (a deferred "
                    "import), or import the module instead of names from it. Importing from the package's "
                    "own __init__ (`from peft_x import Y` inside peft_x) is a common cause: import from the "
                    "defining module instead."
                ),
            )
        )
    return problems


@job
def import_in_order(order: list[str]) -> dict[str, Any]:
    """Import the modules one after another; report the first that fails."""
    for position, module in enumerate(order):
        try:
            importlib.import_module(module)
        except BaseException as exc:
            return {"failed": module, "position": position, "error": _short_error(exc)}
    return {"failed": None}


def import_order_jobs(ws: Workspace) -> list[tuple[str, list[str]]]:
    """(label, order) pairs: each module first, then the rest of its package; plus two global orders."""
    out: list[tuple[str, list[str]]] = []
    for pkg in ws.packages:
        # `python -m` entry modules run the program when imported: they are no library modules
        modules = sorted(m for m in pkg.modules() if not m.endswith(".__main__"))
        for first in modules:
            out.append((f"{first} first", [first] + [m for m in modules if m != first]))
    everything = sorted(m for m in ws.module_index() if not m.endswith(".__main__"))
    if everything:
        out.append(("all workspace modules, sorted", everything))
        out.append(("all workspace modules, reversed", everything[::-1]))
    return out


def check_import_orders(ws: Workspace, graph: ImportGraph | None = None, workers: int = 2) -> list[Problem]:
    """Import every module first in a fresh interpreter (then the rest of its package).

    Why fork: a cycle like `a: from .b import X` / `b: import pkg.a` only fails when `b` is imported
    first; catching it needs a fresh interpreter per "first" module. A subprocess per module pays
    torch's ~3-4 s import each time (minutes for a few packages on 2 cores), while one subprocess per
    package can only try one order. Forking a parent that has imported only third-party packages
    gives each module a workspace-fresh interpreter for a few milliseconds. Third-party modules
    being preloaded can't hide a cycle between workspace modules. Without fork (non-Linux, or
    PEFT_WS_SPAWN=1) each order is its own subprocess: the same check, slower.
    """
    graph = graph or ImportGraph(ws)
    if graph.graph is None:
        return []
    orders = import_order_jobs(ws)
    results = run_fresh(
        [("import_in_order", {"order": order}) for _, order in orders],
        preimport=graph.import_time_externals(),
        forbidden=ws.import_names,
        workers=workers,
    )
    # one problem per distinct error, listing every order (and first-imported module) that hits it
    failures: dict[str, list[tuple[str, str]]] = {}
    for (label, order), result in zip(orders, results, strict=True):
        if not result.get("ok"):
            failures.setdefault(result.get("error", ""), []).append((label, order[0]))
            continue
        value = result["value"]
        if value["failed"] is not None:
            failures.setdefault(value["error"], []).append((label, value["failed"]))
    problems = []
    for error, hits in sorted(failures.items(), key=lambda item: item[1][0][1]):
        module = hits[0][1]
        modules = sorted({m for _, m in hits})
        pkg, path = graph.index.get(module, (None, None))
        circular = "circular import" in error or "partially initialized" in error
        problems.append(
            Problem(
                kind="import-order" if circular else "import-error",
                package=pkg.dist if pkg else "?",
                where=f"{pkg.relfile(path)} (module {module})" if pkg else module,
                what=(
                    f"Importing {', '.join(modules)} fails in a fresh interpreter with these import orders: "
                    f"{'; '.join(label for label, _ in hits)}.\n{error}"
                ),
                fix=(
                    "A circular import that bites in this order: see the import-cycle problem for the chain; "
                    "break it by moving shared definitions into a module that imports neither side, or by "
                    "deferring one import into the function that needs it."
                    if circular
                    else "Every module must import on its own in a fresh interpreter: fix the error above "
                    "(a missing dependency, or code that relies on another module having been imported first)."
                ),
            )
        )
    return problems


# --------------------------------------------------------------------------------------------------
# Check 2: layering and declared dependencies
# --------------------------------------------------------------------------------------------------


def _declares(pkg: Package, dist: str, extras: bool = False) -> bool:
    """Whether `pkg` lists `dist` in [project].dependencies (or, with `extras`, in an optional extra)."""
    requirements = list(pkg.requirements)
    if extras:
        requirements += [r for reqs in pkg.optional_requirements.values() for r in reqs]
    return any(normalize(r.name) == dist for r in requirements)


def check_layering(ws: Workspace, graph: ImportGraph | None = None) -> list[Problem]:
    """peft-core imports no method package; a package imports another member only if it declares it.

    Uses grimp's direct imports, including imports inside functions: a deferred import of an
    undeclared package still fails for a user who installed only the declared ones.
    """
    graph = graph or ImportGraph(ws)
    members = ws.by_import()
    problems: list[Problem] = []
    grouped: dict[tuple[str, str], list[ImportEdge]] = {}
    for edge in graph.edges.values():
        importer_pkg = graph.index[edge.importer][0]
        target = members.get(edge.imported.split(".")[0])
        if target is None or target is importer_pkg:
            continue
        if importer_pkg.is_core or not _declares(importer_pkg, target.dist, extras=True):
            grouped.setdefault((importer_pkg.dist, target.dist), []).append(edge)
    by_dist = ws.by_dist()
    for (importer_dist, target_dist), edges in sorted(grouped.items()):
        pkg, target = by_dist[importer_dist], by_dist[target_dist]
        sites = "\n".join(f"  {graph.describe_edge(e.importer, e.imported)}" for e in edges)
        if pkg.is_core:
            problems.append(
                Problem(
                    kind="core-imports-method",
                    package=pkg.dist,
                    where=", ".join(sorted({pkg.relfile(graph.index[e.importer][1]) for e in edges})),
                    what=(
                        f"{pkg.dist} imports the method package {target.dist} ({target.import_names[0] if target.import_names else '?'}); "
                        f"the core must not know any method (even in a function: a user without {target.dist} "
                        f"installed would get an ImportError):\n{sites}"
                    ),
                    fix=(
                        "Remove the import. Core finds methods through the `peft.methods` entry points "
                        "(peft_core.discovery) and the registry; if core needs method-specific behaviour, add a "
                        "hook on BaseTuner/BaseTunerLayer or an argument to register_peft_method that the "
                        "method package fills in."
                    ),
                )
            )
        else:
            kind = "undeclared-workspace-import" if not target.is_core else "undeclared-core-import"
            problems.append(
                Problem(
                    kind=kind,
                    package=pkg.dist,
                    where=", ".join(sorted({pkg.relfile(graph.index[e.importer][1]) for e in edges})),
                    what=(
                        f"{pkg.dist} imports {', '.join(target.import_names)} (workspace package {target.dist}) "
                        f"but {pkg.file()} does not list {target.dist} in [project].dependencies; installed "
                        f"alone from PyPI it would fail with ModuleNotFoundError:\n{sites}"
                    ),
                    fix=(
                        f"Either remove the import, or declare the dependency in {pkg.file()}: add "
                        f"\"{target.dist}>={_lower(target.version)},<{_next_minor(target.version)}\" to "
                        f"[project].dependencies and `{target.dist} = {{ workspace = true }}` to "
                        f"[tool.uv.sources] (an optional extra also counts, if the import is guarded). Method "
                        f"packages should depend on another method package only when they build on it (as "
                        f"AdaLoRA builds on LoRA)."
                    ),
                )
            )
    return problems


def _lower(version: str | None) -> str:
    if not version:
        return "0.1"
    parts = version.split(".")
    return ".".join(parts[:2])


def _next_minor(version: str | None) -> str:
    if not version:
        return "0.2"
    parts = (version.split(".") + ["0", "0"])[:2]
    try:
        if parts[0] == "0":
            return f"0.{int(parts[1]) + 1}"
        return f"{int(parts[0]) + 1}"
    except ValueError:
        return "?"


def check_dependency_graph(ws: Workspace) -> list[Problem]:
    """Dependencies among workspace members (runtime, from the pyprojects) must form no cycle."""
    deps = {p.dist: [d.dist for d in ws.member_deps(p)] for p in ws.packages}
    problems = []
    for component in _strongly_connected(deps, lambda n: deps.get(n, [])):
        cycle = _find_cycle(component, deps)
        by = ws.by_dist()
        problems.append(
            Problem(
                kind="dependency-cycle",
                package=", ".join(component),
                where=", ".join(by[d].file() for d in component),
                what=(
                    "Workspace packages depend on each other in a cycle (from [project].dependencies): "
                    + " -> ".join(cycle)
                    + ". Neither can be released or installed first, and their imports will tangle."
                ),
                fix=(
                    "Remove one of these dependencies: move the shared code into the lower package (or into "
                    "peft-core if every method needs it), so dependencies point one way only."
                ),
            )
        )
    return problems


def _find_cycle(component: list[str], deps: dict[str, list[str]]) -> list[str]:
    members = set(component)
    start = component[0]
    # breadth-first search back to start
    prev: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in deps.get(node, []):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return component + [component[0]]


DEPTRY_FIXES = {
    "DEP001": (
        "imports {module}, which no declared dependency provides and which is not installed",
        "Declare the distribution that provides `{module}` in {file} [project].dependencies with a version "
        "range (e.g. \"name>=X,<Y\"), or remove the import.",
    ),
    "DEP002": (
        "declares {module} in [project].dependencies but never imports it",
        "Remove it from [project].dependencies in {file} (users install it for nothing), or move it to an "
        "optional extra if it is meant for users' convenience.",
    ),
    "DEP003": (
        "imports {module}, which is installed only because another package depends on it (a transitive "
        "dependency); a release of that package could drop it",
        "Declare the distribution that provides `{module}` in {file} [project].dependencies with a version "
        "range (e.g. \"name>=X,<Y\"), or remove the import.",
    ),
    "DEP004": (
        "imports {module}, which is declared only in a dependency group (e.g. dev); a user installing the "
        "package won't get it",
        "Move it to [project].dependencies (or an optional extra, imported lazily with a clear error) in "
        "{file}, or stop importing it from src/.",
    ),
    "DEP005": (
        "declares {module}, which is part of the standard library",
        "Remove it from [project].dependencies in {file}.",
    ),
}


def _deptry_command() -> list[str]:
    exe = Path(sys.executable).parent / "deptry"
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-m", "deptry"]


def check_declared_dependencies(ws: Workspace) -> list[Problem]:
    """deptry per member (`cd packages/<pkg> && deptry src`): third-party imports vs the pyproject.

    Imports of other workspace members are left to check_layering (grimp), which knows about
    workspace members and points at the import line. Optional extras that the code never imports
    are allowed (DEP002 only for [project].dependencies): an extra can exist for users' convenience.

    deptry reads `import` statements only. A module that a dependency imports on our behalf is
    invisible to it: numpy, which `safetensors.torch.save_file` (and `Tensor.numpy()`) import but
    neither torch nor safetensors declare (safetensors only through its `torch`/`numpy` extras), was
    missing from `pip install peft-lora`, and the workspace venv always has numpy (transformers), so
    no test noticed. `isolated_run` covers that: it runs a save/load round trip of every method with
    only the declared dependencies installed (tests/_isolation_roundtrip.py).
    """
    from concurrent.futures import ThreadPoolExecutor

    mapping = ",".join(f"{p.dist}={'|'.join(p.import_names)}" for p in ws.packages if p.import_names)
    members = [p for p in ws.packages if p.src.is_dir() and p.import_names]
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = pool.map(lambda pkg: _deptry_member(ws, pkg, mapping), members)
        return [problem for problems in found for problem in problems]


def _deptry_member(ws: Workspace, pkg: Package, mapping: str) -> list[Problem]:
    problems: list[Problem] = []
    others = [n for n in ws.import_names if n not in pkg.import_names]
    extras_only = sorted(
        {normalize(r.name) for reqs in pkg.optional_requirements.values() for r in reqs}
        - {normalize(r.name) for r in pkg.requirements}
    )
    ignores = []
    if others:
        ignores += [f"DEP001={'|'.join(others)}", f"DEP003={'|'.join(others)}"]
    if extras_only:
        ignores.append(f"DEP002={'|'.join(extras_only)}")
    with tempfile.TemporaryDirectory(prefix="peft-ws-deptry-") as tmp:
        out = Path(tmp, "deptry.json")
        cmd = [*_deptry_command(), "src", "--no-ansi", "-o", str(out)]
        for name in pkg.import_names:
            cmd += ["--known-first-party", name]
        if mapping:
            cmd += ["--package-module-name-map", mapping]
        if ignores:
            cmd += ["--per-rule-ignores", ",".join(ignores)]
        proc = subprocess.run(cmd, cwd=pkg.path, capture_output=True, text=True, timeout=300)
        if not out.is_file():
            return [
                Problem(
                    kind="deptry-failed",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=f"deptry could not analyse {pkg.rel} (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                    fix=f"Run `cd {pkg.rel} && deptry src` and fix what it reports (usually an unreadable pyproject.toml).",
                )
            ]
        for item in json.loads(out.read_text()):
            code = item["error"]["code"]
            module = item.get("module", "?")
            loc = item.get("location", {})
            where = f"{pkg.rel}/{loc.get('file')}" + (f":{loc['line']}" if loc.get("line") else "")
            what, fix = DEPTRY_FIXES.get(code, ("{module}: " + item["error"]["message"], "See https://deptry.com/issue-codes/"))
            problems.append(
                Problem(
                    kind=f"deptry-{code}",
                    package=pkg.dist,
                    where=where,
                    what=f"{pkg.dist} " + what.format(module=f"`{module}`") + f" (deptry {code}: {item['error']['message']})",
                    fix=fix.format(module=module, file=pkg.file()),
                )
            )
    return problems


# --------------------------------------------------------------------------------------------------
# Check 3: registration
# --------------------------------------------------------------------------------------------------


def _describe_method(method: Any) -> dict[str, Any]:
    def qual(cls: type) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    return {
        "config": qual(method.config_cls),
        "model": qual(method.model_cls),
        "prefix": method.prefix,
        "shares_prefix_with": method.shares_prefix_with,
        "module": method.module,
    }


@job
def registration_probe(
    modules: list[str], attrs: dict[str, str] | None = None, load_all: bool = False, load_names: list[str] | None = None
) -> dict[str, Any]:
    """Import peft_core, then `modules` in order; record each register_peft_method call and the registry."""
    import peft_core
    import peft_core.registry as registry

    calls: list[dict[str, Any]] = []
    original = registry.register_peft_method

    def recording(**kwargs: Any) -> Any:
        frame = sys._getframe(1)
        # attribute the call to the first caller outside peft-core (a core helper may be in between)
        while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == CORE_IMPORT:
            frame = frame.f_back
        call = {
            "name": kwargs.get("name"),
            "caller": frame.f_globals.get("__name__"),
            "file": frame.f_code.co_filename,
            "line": frame.f_lineno,
            "error": None,
        }
        calls.append(call)
        try:
            return original(**kwargs)
        except BaseException as exc:
            call["error"] = f"{type(exc).__name__}: {exc}"
            raise

    registry.register_peft_method = recording
    peft_core.register_peft_method = recording
    before = set(registry.registered_methods())
    steps = []
    for module in modules:
        start = len(calls)
        known = set(registry.registered_methods())
        error = None
        try:
            imported = importlib.import_module(module)
            attr = (attrs or {}).get(module)
            if attr:
                for part in attr.split("."):
                    imported = getattr(imported, part)
        except BaseException as exc:
            error = _short_error(exc)
        steps.append(
            {
                "module": module,
                "new": sorted(set(registry.registered_methods()) - known),
                "calls": calls[start:],
                "error": error,
            }
        )
    load_all_error = None
    if load_all:  # discovery through entry points: every installed one, or only `load_names`
        try:
            if load_names is None:
                peft_core.load_all_methods()
            else:
                from peft_core.discovery import load_method

                for name in load_names:
                    load_method(name)
        except BaseException as exc:
            load_all_error = _short_error(exc)
    final = {n: _describe_method(m) for n, m in registry.registered_methods().items() if n not in before}
    return {"steps": steps, "final": final, "calls": calls, "preexisting": sorted(before), "load_all_error": load_all_error}


def _installed_entry_points(dist: str) -> dict[str, str] | None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        found = distribution(dist)
    except PackageNotFoundError:
        return None
    return {ep.name: ep.value for ep in found.entry_points if ep.group == ENTRY_POINT_GROUP}


def _split_entry_point(value: str) -> tuple[str, str | None]:
    module, _, attr = value.partition(":")
    return module.strip(), (attr.strip() or None)


def _permutations(items: list[str], limit: int = 24, seed: int = 20241211) -> list[list[str]]:
    n = len(items)
    if n == 0:
        return []
    if n <= 4:
        return [list(p) for p in itertools.permutations(items)]
    orders = [items[i:] + items[:i] for i in range(n)]  # every package once in first place
    orders.append(items[::-1])
    rng = random.Random(seed)
    while len(orders) < max(limit, n + 1):
        candidate = items[:]
        rng.shuffle(candidate)
        if candidate not in orders:
            orders.append(candidate)
    return orders


def _owner_of(call: dict[str, Any], ws: Workspace) -> Package | None:
    caller = (call.get("caller") or "").split(".")[0]
    return ws.by_import().get(caller)


def check_registration(
    ws: Workspace, workers: int = 2, foreign: bool = True, graph: ImportGraph | None = None
) -> list[Problem]:
    """Entry points, registrations, names, prefixes and import-order independence of the registry.

    - each package's `peft.methods` entry points in its pyproject equal those in its installed metadata;
    - importing a package alone (fresh interpreter) registers its methods, each exactly once, and each
      registered method has an entry point of the same name;
    - loading each entry point alone registers the method it names (not nothing, not something else);
    - method names are unique across packages; a shared parameter prefix is declared (shares_prefix_with);
    - importing all packages in several orders (fresh interpreter each) gives the same registry, which
      also equals what `load_all_methods()` builds from the entry points;
    - (foreign=True) no installed distribution outside the workspace advertises a `peft.methods` entry point.
    """
    problems: list[Problem] = []
    methods = [p for p in ws.method_packages if p.import_names]
    core = ws.by_dist().get(CORE_DIST)

    # -- entry points: pyproject vs installed metadata ------------------------------------------
    entry_points: dict[str, dict[str, str]] = {}
    for pkg in ws.packages:
        declared = pkg.entry_points
        installed = _installed_entry_points(pkg.dist)
        if installed is None:
            problems.append(
                Problem(
                    kind="not-installed",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=f"{pkg.dist} is a workspace member but is not installed in this environment ({sys.prefix}).",
                    fix="Run `uv sync` at the workspace root (it installs every member), then run the tests again.",
                )
            )
        elif installed != declared:
            problems.append(
                Problem(
                    kind="entry-points-stale",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=(
                        f"The `{ENTRY_POINT_GROUP}` entry points in {pkg.file()} ({declared or 'none'}) differ from "
                        f"the installed metadata of {pkg.dist} ({installed or 'none'}); discovery uses the installed "
                        f"metadata, so it sees the old ones."
                    ),
                    fix="Run `uv sync` (editing entry points needs a reinstall); if it persists, check the "
                    "[project.entry-points.\"peft.methods\"] table for typos.",
                )
            )
        merged = dict(installed or {})
        merged.update(declared)
        entry_points[pkg.dist] = merged
        if pkg.is_core and declared:
            problems.append(
                Problem(
                    kind="core-entry-point",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=f"peft-core declares `{ENTRY_POINT_GROUP}` entry points {declared}; the core provides no method.",
                    fix="Move the method into its own package under packages/ and remove the entry points from peft-core.",
                )
            )
    ep_owners: dict[str, list[str]] = {}
    for dist, eps in entry_points.items():
        for name in eps:
            ep_owners.setdefault(name, []).append(dist)

    if foreign:
        problems += _foreign_entry_points(ws)
    if core is None and not ws.method_packages:
        return problems

    # -- fresh-interpreter probes -----------------------------------------------------------------
    jobs: list[tuple[str, dict[str, Any]]] = []
    labels: list[tuple[str, Any]] = []
    for pkg in methods:
        jobs.append(("registration_probe", {"modules": pkg.import_names}))
        labels.append(("solo", pkg))
    for pkg in ws.method_packages:
        for name, value in sorted(entry_points.get(pkg.dist, {}).items()):
            module, attr = _split_entry_point(value)
            jobs.append(("registration_probe", {"modules": [module], "attrs": {module: attr} if attr else None}))
            labels.append(("entry_point", (pkg, name, value)))
    orders = _permutations([p.dist for p in methods])
    by_dist = ws.by_dist()
    for order in orders:
        modules = [m for dist in order for m in by_dist[dist].import_names]
        jobs.append(("registration_probe", {"modules": modules}))
        labels.append(("order", order))
    if methods:
        # with foreign=False (a throwaway workspace inside another environment) discover only our names
        names = None if foreign else sorted(ep_owners)
        jobs.append(("registration_probe", {"modules": [], "load_all": True, "load_names": names}))
        labels.append(("load_all", None))
    preimport = _core_externals(ws) + (graph or ImportGraph(ws)).import_time_externals()
    results = run_fresh(jobs, preimport=preimport, forbidden=ws.import_names, workers=workers)

    own: dict[str, dict[str, dict[str, Any]]] = {}  # dist -> method name -> description (+ where)
    snapshots: list[tuple[list[str], dict[str, Any]]] = []
    load_all_snapshot: dict[str, Any] | None = None
    for (label, subject), result in zip(labels, results, strict=True):
        if not result.get("ok"):
            problems.append(
                Problem(
                    kind="probe-crashed",
                    package=subject.dist if label == "solo" else "workspace",
                    where=f"fresh interpreter ({label})",
                    what=f"The registration probe itself failed:\n{result.get('error')}",
                    fix="Importing peft_core or the package crashed the interpreter; run the import by hand "
                    "(`uv run python -c 'import <package>'`) and fix the error.",
                )
            )
            continue
        value = result["value"]
        if label == "solo":
            problems += _solo_problems(ws, subject, value, entry_points.get(subject.dist, {}), own)
        elif label == "entry_point":
            problems += _entry_point_problems(subject, value)
        elif label == "order":
            snapshots.append((subject, value))
        elif label == "load_all":
            load_all_snapshot = value

    problems += _name_and_prefix_problems(ws, own, ep_owners)
    problems += _order_problems(ws, snapshots, load_all_snapshot, own)
    return problems


def _core_externals(ws: Workspace) -> list[str]:
    # What importing peft_core costs: preload it only when it is not itself a workspace member.
    return ["torch"] if CORE_IMPORT in ws.import_names else ["torch", CORE_IMPORT]


def _foreign_entry_points(ws: Workspace) -> list[Problem]:
    from importlib.metadata import entry_points

    members = set(ws.by_dist())
    problems = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        dist_name = normalize(dist.name) if dist is not None else None
        if dist_name in members:
            continue
        location = getattr(dist, "_path", None)
        problems.append(
            Problem(
                kind="foreign-entry-point",
                package=dist_name or "unknown distribution",
                where=str(location or sys.prefix),
                what=(
                    f"The environment has a `{ENTRY_POINT_GROUP}` entry point {ep.name} = {ep.value!r} from "
                    f"{dist_name or 'an unknown distribution'} {getattr(dist, 'version', '')}, which is not a "
                    f"workspace member; load_all_methods() imports it too, so the workspace can't be checked alone."
                ),
                fix="Run `uv sync` at the workspace root (it removes packages that aren't members or "
                "dependencies), or uninstall that distribution; a member that was renamed or removed leaves "
                "such stale metadata behind.",
            )
        )
    return problems


def _call_site(pkg: Package, call: dict[str, Any]) -> str:
    return f"{pkg.relfile(call['file'])}:{call['line']}"


def _solo_problems(
    ws: Workspace, pkg: Package, value: dict[str, Any], eps: dict[str, str], own: dict[str, dict[str, dict[str, Any]]]
) -> list[Problem]:
    problems: list[Problem] = []
    for step in value["steps"]:
        if step["error"]:
            problems.append(
                Problem(
                    kind="import-error",
                    package=pkg.dist,
                    where=f"module {step['module']}",
                    what=f"`import {step['module']}` fails in a fresh interpreter (with only peft_core imported first):\n{step['error']}",
                    fix="The package must import on its own. If the error is a RegistrationError, read its "
                    "message; otherwise fix the import error above.",
                )
            )
    mine = [c for c in value["calls"] if _owner_of(c, ws) is pkg]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for call in mine:
        by_name.setdefault(call["name"], []).append(call)
    own[pkg.dist] = {}
    for name, calls in sorted(by_name.items()):
        desc = dict(value["final"].get(name) or {})
        desc["where"] = _call_site(pkg, calls[0])
        desc["module_file"] = pkg.relfile(calls[0]["file"])
        if value["final"].get(name):
            own[pkg.dist][name] = desc
        if len(calls) > 1:
            sites = ", ".join(_call_site(pkg, c) for c in calls)
            problems.append(
                Problem(
                    kind="registered-twice",
                    package=pkg.dist,
                    where=sites,
                    what=f"{pkg.dist} calls register_peft_method(name={name!r}) {len(calls)} times when imported ({sites}).",
                    fix="Register each method exactly once, in the package's __init__.py; remove the other calls.",
                )
            )
        if name not in eps:
            problems.append(
                Problem(
                    kind="missing-entry-point",
                    package=pkg.dist,
                    where=f"{_call_site(pkg, calls[0])}; {pkg.file()}",
                    what=(
                        f"{pkg.dist} registers the method {name!r} but declares no `{ENTRY_POINT_GROUP}` entry point "
                        f"named {name!r}; loading a saved {name.upper()} adapter can't find the package unless the "
                        f"user imported it first."
                    ),
                    fix=(
                        f"Add to {pkg.file()}:\n[project.entry-points.\"{ENTRY_POINT_GROUP}\"]\n"
                        f"{name} = \"{pkg.import_names[0]}\"\nthen run `uv sync`."
                    ),
                )
            )
    return problems


def _entry_point_problems(subject: tuple[Package, str, str], value: dict[str, Any]) -> list[Problem]:
    pkg, name, target = subject
    step = value["steps"][0]
    where = f"{pkg.file()} [project.entry-points.\"{ENTRY_POINT_GROUP}\"] {name} = \"{target}\""
    if step["error"]:
        return [
            Problem(
                kind="entry-point-import-error",
                package=pkg.dist,
                where=where,
                what=f"Loading the entry point {name} = {target!r} in a fresh interpreter fails:\n{step['error']}",
                fix="Point the entry point at the package that registers the method (`\"<import package>\"`) and make "
                "sure it imports on its own.",
            )
        ]
    registered = sorted(value["final"])
    if name in registered:
        return []
    module = _split_entry_point(target)[0]
    if not registered:
        return [
            Problem(
                kind="entry-point-registers-nothing",
                package=pkg.dist,
                where=where,
                what=(
                    f"Importing {module!r} (the target of entry point {name!r}) registers no method at all, so "
                    f"loading a {name.upper()} adapter fails with 'registered no method named {name!r}'."
                ),
                fix=(
                    f"Call register_peft_method(name={name!r}, ...) in {module}'s __init__.py (import the config "
                    f"and model classes there), or point the entry point at the module that does."
                ),
            )
        ]
    return [
        Problem(
            kind="entry-point-registers-other",
            package=pkg.dist,
            where=where,
            what=(
                f"Entry point {name!r} imports {module!r}, which registers {registered} but not {name!r}; "
                f"discovery of {name.upper()} adapters fails and the entry point advertises a method that doesn't exist."
            ),
            fix=(
                f"Make the entry point name equal the registered method name: rename it to one of {registered} in "
                f"{pkg.file()}, or register the method as {name!r}; then run `uv sync`."
            ),
        )
    ]


def _name_and_prefix_problems(
    ws: Workspace, own: dict[str, dict[str, dict[str, Any]]], ep_owners: dict[str, list[str]]
) -> list[Problem]:
    problems: list[Problem] = []
    by_dist = ws.by_dist()
    owners: dict[str, list[str]] = {}
    for dist, methods in own.items():
        for name in methods:
            owners.setdefault(name, []).append(dist)
    for name in sorted(set(owners) | set(ep_owners)):
        dists = sorted(set(owners.get(name, [])) | set(ep_owners.get(name, [])))
        if len(dists) < 2:
            continue
        sites = "; ".join(
            own.get(d, {}).get(name, {}).get("where") or by_dist[d].file() for d in dists
        )
        problems.append(
            Problem(
                kind="duplicate-name",
                package=", ".join(dists),
                where=sites,
                what=(
                    f"The method name {name!r} is registered or advertised by {len(dists)} packages: {', '.join(dists)}. "
                    f"Installed together, the second registration raises RegistrationError, and an adapter with "
                    f"peft_type {name.upper()!r} is ambiguous."
                ),
                fix="Give each method its own name (register_peft_method(name=...), its config's peft_type and its "
                "entry point name), or merge the packages.",
            )
        )

    flat = {name: (dist, desc) for dist, methods in own.items() for name, desc in methods.items()}
    by_prefix: dict[str, list[str]] = {}
    for name, (_, desc) in flat.items():
        by_prefix.setdefault(desc["prefix"], []).append(name)
    for prefix, names in sorted(by_prefix.items()):
        for name in sorted(names):
            dist, desc = flat[name]
            shared = desc.get("shares_prefix_with")
            if shared is not None:
                continue
            for other in sorted(names):
                if other <= name:
                    continue
                odist, odesc = flat[other]
                if odesc.get("shares_prefix_with") is not None:
                    continue
                problems.append(
                    Problem(
                        kind="undeclared-shared-prefix",
                        package=", ".join(sorted({dist, odist})),
                        where=f"{desc['where']}; {odesc['where']}",
                        what=(
                            f"Methods {name!r} ({dist}) and {other!r} ({odist}) both use the parameter prefix "
                            f"{prefix!r} and neither declares shares_prefix_with: installed together, the second "
                            f"import raises RegistrationError, and their saved keys can't be told apart."
                        ),
                        fix=(
                            f"Give one of them its own prefix (register_peft_method(prefix=...) and the model class's "
                            f"`prefix`), or, if {other!r} deliberately saves {name!r}'s parameter names (as AdaLoRA "
                            f"does LoRA's), pass shares_prefix_with={name!r} in {odist} and declare {dist} as its "
                            f"dependency."
                        ),
                    )
                )
        for name in sorted(names):
            dist, desc = flat[name]
            shared = desc.get("shares_prefix_with")
            if shared is None:
                continue
            target = flat.get(shared)
            if target is None or target[1]["prefix"] != prefix:
                problems.append(
                    Problem(
                        kind="bad-shares-prefix-with",
                        package=dist,
                        where=desc["where"],
                        what=f"{name!r} declares shares_prefix_with={shared!r}, but no workspace package registers "
                        f"{shared!r} with prefix {prefix!r}.",
                        fix=f"Point shares_prefix_with at the method whose prefix {prefix!r} is reused, or drop it.",
                    )
                )
            elif target[0] != dist and not _declares(by_dist[dist], target[0]):
                problems.append(
                    Problem(
                        kind="undeclared-prefix-owner",
                        package=dist,
                        where=f"{desc['where']}; {by_dist[dist].file()}",
                        what=f"{name!r} shares the prefix of {shared!r} from {target[0]}, but {dist} does not depend "
                        f"on {target[0]}: installed alone, registering {name!r} fails because {shared!r} is unknown.",
                        fix=f"Add {target[0]} to [project].dependencies of {dist} (with a version range and a "
                        f"workspace source) and import it in {dist}'s __init__ before registering.",
                    )
                )
    return problems


def _order_problems(
    ws: Workspace,
    snapshots: list[tuple[list[str], dict[str, Any]]],
    load_all: dict[str, Any] | None,
    own: dict[str, dict[str, dict[str, Any]]],
) -> list[Problem]:
    problems: list[Problem] = []
    reference: tuple[list[str], dict[str, Any]] | None = None
    bad_orders: list[str] = []
    for order, value in snapshots:
        errors = [s for s in value["steps"] if s["error"]]
        if errors:
            step = errors[0]
            problems.append(
                Problem(
                    kind="order-import-error",
                    package=", ".join(order),
                    where=f"module {step['module']}",
                    what=(
                        f"Importing the packages in the order {' -> '.join(order)} (fresh interpreter) fails at "
                        f"{step['module']}:\n{step['error']}"
                    ),
                    fix="Packages must be importable together in any order: resolve the conflict named above "
                    "(duplicate names or prefixes are reported separately), and import any package yours builds "
                    "on at the top of your __init__.",
                )
            )
            continue
        if reference is None:
            reference = (order, value["final"])
        elif value["final"] != reference[1]:
            bad_orders.append(
                f"{' -> '.join(order)}:\n    {_diff(reference[1], value['final'])}"
            )
    if bad_orders and reference is not None:
        problems.append(
            Problem(
                kind="order-dependent-registry",
                package="workspace",
                where="registry after importing every method package",
                what=(
                    f"The registry depends on the import order. Reference order {' -> '.join(reference[0])}; "
                    f"differing orders:\n" + "\n".join(bad_orders)
                ),
                fix="Registration must not depend on what was imported before: register unconditionally in "
                "__init__, and import any package yours builds on before registering.",
            )
        )
    if load_all is not None and reference is not None:
        mine = {n for methods in own.values() for n in methods}
        got = {n: d for n, d in load_all["final"].items() if n in mine or d.get("module") in ws.by_import()}
        if load_all.get("load_all_error") or got != reference[1]:
            problems.append(
                Problem(
                    kind="load-all-mismatch",
                    package="workspace",
                    where="peft_core.load_all_methods()",
                    what=(
                        "load_all_methods() (discovery through entry points) does not build the same registry as "
                        "importing the packages: "
                        + (load_all.get("load_all_error") or _diff(reference[1], got))
                    ),
                    fix="Make every package's entry points name exactly the methods its __init__ registers "
                    "(see the entry-point problems), then run `uv sync`.",
                )
            )
    return problems


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    parts = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            parts.append(f"{name!r} missing")
        elif name not in a:
            parts.append(f"{name!r} extra: {b[name]}")
        elif a[name] != b[name]:
            parts.append(f"{name!r}: {a[name]} vs {b[name]}")
    return "; ".join(parts) or "no difference"


# --------------------------------------------------------------------------------------------------
# Check 3b: each method's state dict holds exactly its own adapter tensors
# --------------------------------------------------------------------------------------------------

# Wide enough for methods with size constraints (FourierFT's 1000 frequencies, VB-LoRA's 256-long vectors).
PROBE_DIM = 256
# Base-model module names that look like adapter tensors of real methods (prefixes contain each other).
DECOYS = ("vblora_x", "boft_y", "oft_z", "lora_A", "lora_B", "lora_embedding_A", "ia3_l", "adalora_E")
# Config fields that, left at their default, make a fresh adapter an exact no-op.
INIT_FLAG = re.compile(r"^init(_[a-z0-9]+)*$")
# `*_modules` fields other than these, left at None, may need a value on a model without a model_type
# (IA3's `feedforward_modules`); the probe then tries a subset of the targets.
GENERIC_MODULE_FIELDS = ("target_modules", "exclude_modules", "modules_to_save")


def _probe_module_names(prefixes: Iterable[str]) -> tuple[list[str], list[str]]:
    """`target`, `<prefix>proj` and `<prefix>A` for every registered prefix, then the fixed decoys."""
    names = ["target"]
    for prefix in sorted(set(prefixes)):
        for suffix in ("proj", "A"):
            candidate = f"{prefix}{suffix}"
            if candidate.isidentifier() and candidate not in names:
                names.append(candidate)
    decoys = [d for d in DECOYS if d not in names]
    return names + decoys, decoys


def _config_candidates(config_cls: type, targets: list[str]) -> tuple[list[dict[str, Any]], str | None, str]:
    """Keyword sets to try, most thorough first, for building `config_cls` without knowing the method.

    Returns (candidates, reason to skip or None, kind): kind is "layers" (the method injects layers
    into named modules) or "prompt" (prompt learning: virtual tokens for a transformers model).
    """
    fields = [f for f in dataclasses.fields(config_cls) if f.init]
    names = {f.name for f in fields}
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if required:
        return [], f"{config_cls.__name__} has required fields without defaults: {required}", ""
    flags = {f.name: False for f in fields if INIT_FLAG.match(f.name) and f.default is True}
    if "target_modules" not in names:
        if "num_virtual_tokens" in names:
            base = {"task_type": "CAUSAL_LM", "num_virtual_tokens": 3}
            return _unique([base]), None, "prompt"
        return [], (
            f"{config_cls.__name__} has neither target_modules (a layer-injecting method) nor num_virtual_tokens "
            f"(prompt learning), so the probe doesn't know how to apply it"
        ), ""
    subsets = {
        f.name: [targets[0]]
        for f in fields
        if f.name.endswith("_modules") and f.name not in GENERIC_MODULE_FIELDS and f.default is None
    }
    # Plain `Optional[int]` fields left at None that a method insists on (AdaLoRA's `total_step`).
    counts = {f.name: 10 for f in fields if f.default is None and _is_optional_int(config_cls, f.name)}
    base = {"target_modules": list(targets)}
    firsts = [{**base, **flags}, {**base, **flags, **subsets}, base, {**base, **subsets}]
    return _unique(firsts + [{**c, **counts} for c in firsts]), None, "layers"


def _is_optional_int(config_cls: type, name: str) -> bool:
    import typing

    try:
        hint = typing.get_type_hints(config_cls).get(name)
    except Exception:
        return False
    args = set(typing.get_args(hint))
    return args == {int, type(None)}


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _drop_segment(key: str, segment: str) -> str | None:
    parts = key.split(".")
    if segment not in parts:
        return None
    parts.remove(segment)
    return ".".join(parts)


@job
def state_dict_probe(method: str, modules: list[str], workdir: str) -> dict[str, Any]:
    """Save `method`'s adapter from a model whose module names carry every prefix; check keys; reload.

    Layer-injecting methods get a plain module of parallel nn.Linear branches (`target`,
    `<prefix>proj`, `<prefix>A` for every registered prefix, and decoys such as `vblora_x`,
    `boft_y`), targeting `target` and the method's own `<prefix>proj`; every branch's output is
    part of the model's output, so no adapter's effect can vanish. Prompt-learning methods get a
    tiny Llama with the same decoy modules attached.
    """
    import torch
    from torch import nn

    import peft_core
    from peft_core import BaseTunerLayer, PeftModel, get_peft_model

    for module in modules:
        importlib.import_module(module)
    registered = peft_core.registered_methods()
    if method not in registered:
        return {"status": "fail", "problems": [f"{method!r} is not registered after importing {modules}"]}
    spec = registered[method]
    names, decoys = _probe_module_names(m.prefix for m in registered.values())
    own = f"{spec.prefix}proj"
    targets = ["target"] + ([own] if own in names else [])
    candidates, reason, kind = _config_candidates(spec.config_cls, targets)
    if reason is not None:
        return {"status": "skip", "reason": reason}

    if kind == "layers":

        class Probe(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.branches = tuple(names)
                for n in names:
                    self.add_module(n, nn.Linear(PROBE_DIM, PROBE_DIM))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.cat([self._modules[n](x) for n in self.branches], dim=-1)

        def fresh() -> nn.Module:
            torch.manual_seed(0)
            return Probe().eval()

        inputs = {"x": torch.randn(3, PROBE_DIM, generator=torch.Generator().manual_seed(1))}

        def run(model: nn.Module) -> torch.Tensor:
            with torch.no_grad():
                return model(**inputs)

    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        untargeted = names  # nothing is targeted: every decoy must stay out of the file
        targets = []

        def fresh() -> nn.Module:
            torch.manual_seed(0)
            config = LlamaConfig(
                vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
            )
            model = LlamaForCausalLM(config)
            for n in names:
                model.add_module(n, nn.Linear(16, 16))
            return model.eval()

        inputs = {"input_ids": torch.randint(0, 64, (2, 5), generator=torch.Generator().manual_seed(1))}

        def run(model: nn.Module) -> torch.Tensor:
            with torch.no_grad():
                return model(**inputs).logits

    base_out = run(fresh())
    model = None
    failures: list[str] = []
    used: dict[str, Any] = {}
    for kwargs in candidates:
        try:
            model = get_peft_model(fresh(), spec.config_cls(**kwargs))
            used = kwargs
            break
        except Exception as exc:
            failures.append(f"{spec.config_cls.__name__}(**{kwargs}) -> {_short_error(exc, 3)}")
    if model is None:
        return {
            "status": "skip",
            "reason": "no generic configuration could be applied to the probe model:\n  " + "\n  ".join(failures),
        }
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _, param in model.named_parameters():
            if param.requires_grad:  # the adapter's trainable tensors: make them clearly non-trivial
                param.add_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.2)
    model.eval()
    out = run(model)
    model.save_pretrained(workdir)
    from safetensors.torch import load_file

    saved = load_file(os.path.join(workdir, "adapter_model.safetensors"))
    adapter = "default"

    expected: set[str] = set()
    if kind == "layers":
        # Derived from the adapter layers themselves: their own (non-base_layer) trainable parameters and
        # persistent buffers of `adapter` (DeLoRA's weight norms, SHiRA's indices), with the adapter name
        # dropped, as Hugging Face PEFT names them in the file (settings kept as frozen parameters, like
        # AdaLoRA's `ranknum`, are not saved); plus tensors the tuner itself holds per adapter (VeRA's
        # shared projections, VB-LoRA's vector bank), saved as `base_model.<name>`.
        for lname, layer in model.named_modules():
            if isinstance(layer, BaseTunerLayer):
                for key, tensor in layer.state_dict(keep_vars=True).items():
                    dropped = _drop_segment(key, adapter)
                    if dropped is None or key.startswith("base_layer."):
                        continue
                    if not isinstance(tensor, nn.Parameter) or tensor.requires_grad:
                        expected.add(f"{lname}.{dropped}")
        for key in model.base_model.state_dict(keep_vars=True):
            dropped = _drop_segment(key, adapter)
            if dropped is not None and not key.startswith("model."):
                expected.add(f"base_model.{dropped}")
    else:
        # Hugging Face PEFT's prompt-learning files hold the final virtual-token matrix, plus the tensors
        # the prompt encoder holds itself, outside its sub-modules (multitask prompt tuning's per-task
        # factors), under their bare names; a reparameterising encoder's sub-modules are not saved.
        encoder = model.base_model.prompt_encoder[adapter]
        expected = {"prompt_embeddings"} | {n for n, _ in encoder.named_parameters(recurse=False)}

    problems: list[str] = []
    got = set(saved)
    if got != expected:
        problems.append(
            f"saved keys differ from the adapter's own tensors: extra {sorted(got - expected)}, "
            f"missing {sorted(expected - got)}"
        )
    untargeted = [n for n in names if n not in targets]
    starts = tuple(f"base_model.model.{n}." for n in untargeted) + tuple(f"{n}." for n in untargeted)
    leaked = sorted(k for k in got if k.startswith(starts))
    if leaked:
        problems.append(f"tensors of base-model modules that were not targeted were saved: {leaked}")
    foreign = sorted(
        k for k in got if k.startswith("base_model.model.") and not any(p.startswith(spec.prefix) for p in k.split("."))
    )
    if kind == "layers" and foreign:
        problems.append(
            f"saved layer keys without the method's prefix {spec.prefix!r} in any component (Hugging Face PEFT "
            f"finds adapter tensors in a file by it): {foreign}"
        )
    if not got:
        problems.append("the saved adapter file is empty")
    if out.shape == base_out.shape and torch.allclose(out, base_out):
        problems.append(
            "the adapted model's output equals the base model's even after perturbing every trainable adapter "
            "tensor, so the save/load comparison proves nothing"
        )
    loaded = PeftModel.from_pretrained(fresh(), workdir)
    loaded.eval()
    reloaded_out = run(loaded)
    if not torch.allclose(out, reloaded_out, atol=1e-6, rtol=1e-5):
        problems.append(
            f"outputs after save -> load differ from before (max abs diff {float((out - reloaded_out).abs().max()):.3g})"
        )
    return {
        "status": "fail" if problems else "ok",
        "problems": problems,
        "keys": sorted(got),
        "module_names": names,
        "targets": targets,
        "config_kwargs": used,
        "kind": kind,
    }


def check_state_dicts(
    ws: Workspace, workers: int = 2, workdir: str | None = None, graph: ImportGraph | None = None
) -> list[Problem]:
    """For every method advertised by a workspace package: its saved state dict is exactly its own.

    Skipped methods (config can't be created generically) are returned as kind ``state-dict-skip``.
    """
    methods = [(pkg, name) for pkg in ws.method_packages for name in sorted(pkg.entry_points)]
    if not methods:
        return []
    modules = [m for pkg in ws.method_packages for m in pkg.import_names]
    tmp = tempfile.mkdtemp(prefix="peft-ws-state-", dir=workdir)
    try:
        jobs = [
            ("state_dict_probe", {"method": name, "modules": modules, "workdir": os.path.join(tmp, name)})
            for _, name in methods
        ]
        preimport = _core_externals(ws) + (graph or ImportGraph(ws)).import_time_externals() + ["safetensors.torch"]
        if len(methods) > 4:  # some are likely prompt learning, whose probe needs transformers' Llama
            preimport.append("transformers.models.llama.modeling_llama")
        results = run_fresh(jobs, preimport=preimport, forbidden=ws.import_names, workers=workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    problems: list[Problem] = []
    for (pkg, name), result in zip(methods, results, strict=True):
        where = f"method {name!r} ({pkg.rel}/src/{pkg.import_names[0] if pkg.import_names else '?'})"
        if not result.get("ok"):
            problems.append(
                Problem(
                    kind="state-dict",
                    package=pkg.dist,
                    where=where,
                    what=f"Saving and reloading a {name} adapter on the probe model raised:\n{result.get('error')}",
                    fix="The method must work on a plain nn.Module with nn.Linear layers named after other methods' "
                    "prefixes (e.g. `lora_proj`, `vblora_x`); fix the error above (see the traceback's last frames).",
                )
            )
            continue
        value = result["value"]
        if value["status"] == "skip":
            problems.append(
                Problem(
                    kind="state-dict-skip",
                    package=pkg.dist,
                    where=where,
                    what=f"Not checked: {value['reason']}",
                    fix="Make the config work with just target_modules (and its init flag) on a model of nn.Linear "
                    "layers, as most Hugging Face PEFT configs do; or teach the probe in "
                    "tests/_workspace_checks.py (_config_candidates) the extra setting the method needs.",
                )
            )
        elif value["status"] != "ok":
            problems.append(
                Problem(
                    kind="state-dict",
                    package=pkg.dist,
                    where=where,
                    what=(
                        f"On a model with modules {value.get('module_names')} targeting {value.get('targets')}:\n- "
                        + "\n- ".join(value["problems"])
                    ),
                    fix="Saved tensors must come only from the method's own adapter layers: list each adapter "
                    "container in the layer's `adapter_layer_names`, never select tensors by matching the prefix "
                    "against key strings, and return base-model tensors only through extra_tensors_to_save.",
                )
            )
    return problems


# --------------------------------------------------------------------------------------------------
# Check 6: package hygiene
# --------------------------------------------------------------------------------------------------


def _has_range(spec: Any) -> tuple[bool, bool]:
    lower = upper = False
    for s in spec:
        if s.operator in (">=", ">", "~=", "==", "==="):
            lower = True
        if s.operator in ("<", "<=", "~=", "===") or (s.operator == "==" and "*" not in s.version):
            upper = True
        if s.operator == "==" and "*" in s.version:
            upper = True
    return lower, upper


def check_package_files(ws: Workspace) -> list[Problem]:
    """Static layout and metadata of every member (nothing is built or imported)."""
    problems: list[Problem] = []

    def add(kind: str, pkg: Package, where: str, what: str, fix: str) -> None:
        problems.append(Problem(kind=kind, package=pkg.dist, where=where, what=what, fix=fix))

    members = ws.by_dist()
    for pkg in ws.packages:
        pyproject = pkg.file()
        project = pkg.project
        if not project.get("name"):
            add("no-name", pkg, pyproject, "[project] has no name.", f"Add `name = \"{pkg.path.name}\"` to [project].")
        if "version" in (project.get("dynamic") or []) or not project.get("version"):
            add(
                "dynamic-version",
                pkg,
                pyproject,
                f"{pkg.dist} has no static version (`version` missing or listed in `dynamic`); "
                "`uv version --package X --bump` and the release tool need a literal version.",
                "Write `version = \"0.1.0\"` in [project] and remove \"version\" from `dynamic`.",
            )
        expected_import = pkg.dist.replace("-", "_")
        if pkg.import_names != [expected_import]:
            add(
                "import-package",
                pkg,
                f"{pkg.rel}/src/",
                f"{pkg.dist} should ship exactly one import package, src/{expected_import}/ (with __init__.py); "
                f"found {pkg.import_names or 'none'}.",
                f"Put the code under {pkg.rel}/src/{expected_import}/ (distribution peft-<x> <-> import peft_<x>).",
            )
        for name in pkg.import_names:
            if not (pkg.src / name / "py.typed").is_file():
                add(
                    "no-py-typed",
                    pkg,
                    f"{pkg.rel}/src/{name}/",
                    f"{pkg.rel}/src/{name}/py.typed is missing, so type checkers ignore the package's annotations.",
                    f"Create the empty file {pkg.rel}/src/{name}/py.typed.",
                )
        if not (pkg.path / "README.md").is_file():
            add("no-readme", pkg, pkg.rel, f"{pkg.rel}/README.md is missing.", "Add a README.md (install, usage) and "
                "`readme = \"README.md\"` in [project].")
        changelog = pkg.path / "CHANGELOG.md"
        if not changelog.is_file():
            add("no-changelog", pkg, pkg.rel, f"{pkg.rel}/CHANGELOG.md is missing.",
                "Add a CHANGELOG.md in Keep a Changelog format with an `## [Unreleased]` section.")
        elif not re.search(r"^## \[Unreleased\]", changelog.read_text(encoding="utf-8"), re.MULTILINE):
            add("changelog-unreleased", pkg, f"{pkg.rel}/CHANGELOG.md",
                f"{pkg.rel}/CHANGELOG.md has no `## [Unreleased]` section; the release tool moves it into the next version.",
                "Add a line `## [Unreleased]` above the newest release section and list pending changes under it.")
        tests = pkg.path / "tests"
        if not tests.is_dir():
            add("no-tests", pkg, pkg.rel, f"{pkg.rel}/tests/ is missing; the root `uv run pytest` collects packages/*/tests.",
                f"Create {pkg.rel}/tests/ with test_*.py files (no __init__.py).")
        else:
            for init in sorted(tests.rglob("__init__.py")):
                folder = init.parent
                if folder == tests or any(folder.glob("test_*.py")) or (folder / "conftest.py").is_file():
                    add("tests-init", pkg, pkg.relfile(init),
                        f"{pkg.relfile(init)} makes the test folder a package; with several packages' tests collected "
                        "together, pytest fails (ImportPathMismatchError / 'Plugin already registered').",
                        f"Delete {pkg.relfile(init)}; put shared helpers in conftest.py fixtures or an installed module.")
        if "pytest" in (pkg.pyproject.get("tool") or {}) and "ini_options" in pkg.pyproject["tool"]["pytest"]:
            add("member-pytest-config", pkg, pyproject,
                f"{pyproject} has [tool.pytest.ini_options]: pytest then takes this folder as rootdir and drops the "
                "root's --import-mode=importlib and marker filters for this package's tests.",
                "Remove the table; put markers and options in the root pyproject.toml.")
        for other in ("pytest.ini", "tox.ini", "setup.cfg"):
            path = pkg.path / other
            if path.is_file() and ("[pytest]" in path.read_text() or "[tool:pytest]" in path.read_text()):
                add("member-pytest-config", pkg, pkg.relfile(path),
                    f"{pkg.relfile(path)} configures pytest for this member only.", f"Delete the pytest section of {other}.")
        dev = pkg.dependency_group("dev")
        if not any(normalize(_requirement(r).name) == "pytest" for r in dev):
            add("no-dev-pytest", pkg, pyproject,
                f"{pkg.dist} has no `pytest` in its `dev` dependency group; an isolated run "
                "(`uv run --package X --isolated pytest`) then uses whatever pytest is on PATH and fails.",
                "Add `[dependency-groups] dev = [\"pytest>=8\", ...]` with what the tests import.")
        # dependencies on workspace members: a bounded range containing the member's version, a workspace source
        from packaging.version import InvalidVersion, Version

        declared = {normalize(r.name): r for r in pkg.requirements}
        if not pkg.is_core and CORE_DIST not in declared:
            add("no-core-dependency", pkg, pyproject,
                f"{pkg.dist} does not declare {CORE_DIST} in [project].dependencies.",
                f"Add \"{CORE_DIST}>=X,<Y\" (the range of core versions it works with) and "
                f"`{CORE_DIST} = {{ workspace = true }}` under [tool.uv.sources].")
        for dist, req in declared.items():
            member = members.get(dist)
            if member is None and dist != CORE_DIST:
                continue
            version = member.version if member is not None else None
            lower, upper = _has_range(req.specifier)
            if not (lower and upper):
                add("unbounded-member-dependency", pkg, pyproject,
                    f"{pkg.dist} depends on {req} without a version range (needs a lower and an upper bound); uv.lock "
                    "ignores ranges for workspace members, so only this check and the built wheel's metadata keep it honest.",
                    f"Write it as \"{dist}>={_lower(version)},<{_next_minor(version)}\" (the core versions it works with).")
            elif version:
                try:
                    ok = req.specifier.contains(Version(version), prereleases=True)
                except InvalidVersion:
                    ok = True
                if not ok:
                    add("member-version-out-of-range", pkg, pyproject,
                        f"{pkg.dist} requires {req}, but the workspace's {dist} is {version}: the lock still "
                        "resolves (workspace sources drop ranges) but the released wheels would not install together.",
                        f"Widen the range to include {version} (after checking {pkg.dist} works with it), e.g. "
                        f"\"{dist}>={_lower(version)},<{_next_minor(version)}\".")
            source = pkg.uv_sources.get(dist)
            if member is not None and not (isinstance(source, dict) and source.get("workspace") is True):
                add("no-workspace-source", pkg, pyproject,
                    f"{pkg.dist} depends on the workspace member {dist} but [tool.uv.sources] has no "
                    f"`{dist} = {{ workspace = true }}`; uv would look for it on the index.",
                    f"Add `{dist} = {{ workspace = true }}` under [tool.uv.sources] in {pyproject}.")
    return problems


def check_wheel(pkg: Package, wheel: Path | str) -> list[Problem]:
    """A built wheel holds only the package's own import package(s) and its dist-info."""
    wheel = Path(wheel)
    problems: list[Problem] = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = [n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")]
        info = sorted(set(dist_info))
        allowed = set(pkg.import_names) | set(info)
        strays = sorted({n.split("/")[0] for n in names} - allowed)
        metadata = ""
        entry_points = ""
        if len(info) == 1:
            metadata = zf.read(f"{info[0]}/METADATA").decode("utf-8", "replace") if f"{info[0]}/METADATA" in names else ""
            if f"{info[0]}/entry_points.txt" in names:
                entry_points = zf.read(f"{info[0]}/entry_points.txt").decode("utf-8", "replace")
    where = f"{wheel.name} (built from {pkg.rel})"
    if strays:
        problems.append(
            Problem(
                kind="wheel-strays",
                package=pkg.dist,
                where=where,
                what=f"The wheel contains top-level entries other than {pkg.import_names} and its dist-info: {strays}. "
                "Installing it would add (or overwrite) those modules in users' environments.",
                fix=f"Restrict the build in {pkg.file()}: [tool.hatch.build.targets.wheel] packages = "
                f"[\"src/{pkg.dist.replace('-', '_')}\"].",
            )
        )
    if len(info) != 1:
        problems.append(Problem("wheel-dist-info", pkg.dist, where, f"Expected one .dist-info folder, found {info}.",
                                "Rebuild with `uv build --package X --wheel`; check the build backend configuration."))
    for name in pkg.import_names:
        if f"{name}/py.typed" not in names:
            problems.append(Problem("wheel-no-py-typed", pkg.dist, where, f"{name}/py.typed is not in the wheel.",
                                    f"Create src/{name}/py.typed (hatchling includes it with the package)."))
        if f"{name}/__init__.py" not in names:
            problems.append(Problem("wheel-missing-package", pkg.dist, where, f"{name}/__init__.py is not in the wheel.",
                                    f"Set [tool.hatch.build.targets.wheel] packages = [\"src/{name}\"] in {pkg.file()}."))
    if metadata:
        requires = [l.split(":", 1)[1].strip() for l in metadata.splitlines() if l.startswith("Requires-Dist:")]
        for line in requires:
            req = _requirement(line)
            if normalize(req.name) == CORE_DIST and not req.marker and not all(_has_range(req.specifier)):
                problems.append(Problem("wheel-unbounded-core", pkg.dist, where,
                                        f"The wheel's METADATA requires `{line}` without a lower and upper bound.",
                                        f"Declare \"{CORE_DIST}>=X,<Y\" in {pkg.file()}."))
    declared = pkg.entry_points
    found: dict[str, str] = {}
    section = None
    for line in entry_points.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section == ENTRY_POINT_GROUP:
            k, v = line.split("=", 1)
            found[k.strip()] = v.strip()
    if found != declared:
        problems.append(Problem("wheel-entry-points", pkg.dist, where,
                                f"The wheel's `{ENTRY_POINT_GROUP}` entry points {found or 'none'} differ from "
                                f"{pkg.file()} ({declared or 'none'}).",
                                "Rebuild the wheel; if it persists, check the build backend's entry-point configuration."))
    return problems


def build_wheels(ws: Workspace, out_dir: Path | str) -> dict[str, tuple[Path | None, str]]:
    """Every member's wheel: one `uv build --all-packages --wheel` (uv builds them in parallel), then
    `uv build --package X` alone for any member whose wheel is missing, to get its own log."""
    out_dir = Path(out_dir)
    uv = shutil.which("uv")
    log = "uv is not on PATH"
    if uv is not None:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        proc = subprocess.run(
            [uv, "build", "--all-packages", "--wheel", "-o", str(out_dir / "all")],
            cwd=ws.root, capture_output=True, text=True, timeout=900, env=env,
        )
        log = proc.stdout + proc.stderr
    results: dict[str, tuple[Path | None, str]] = {}
    for pkg in ws.packages:
        found = sorted((out_dir / "all").glob(f"{pkg.dist.replace('-', '_')}-{pkg.version}-*.whl"))
        results[pkg.dist] = (found[-1], log) if found else build_wheel(pkg, out_dir / pkg.dist)
    return results


def build_wheel(pkg: Package, out_dir: Path | str) -> tuple[Path | None, str]:
    """`uv build --package <dist> --wheel -o <out_dir>`; returns (wheel, build log)."""
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        [uv, "build", "--package", pkg.name, "--wheel", "-o", str(out_dir)],
        cwd=pkg.root,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    wheels = sorted(out_dir.glob(f"{pkg.dist.replace('-', '_')}-*.whl"))
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or not wheels:
        return None, log
    return wheels[-1], log


# --------------------------------------------------------------------------------------------------
# Check 5: isolation (one package + peft-core in a fresh venv)
# --------------------------------------------------------------------------------------------------


def _run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)


def isolated_run(ws: Workspace, pkg: Package, wheels: dict[str, Path], workdir: Path | str) -> tuple[list[Problem], str]:
    """Install `pkg` (+ the members it needs, as wheels) with its dev group in a fresh venv; run its tests.

    Returns (problems, log). The venv gets nothing from the workspace but wheels, so an undeclared
    dependency, a file missing from the wheel or a test relying on another package shows up here.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    log: list[str] = []
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}

    def fail(kind: str, what: str, fix: str) -> tuple[list[Problem], str]:
        return [Problem(kind, pkg.dist, pkg.rel, what, fix)], "\n".join(log)

    if uv is None:
        return fail("isolation-setup", "uv is not on PATH.", "Install uv (https://docs.astral.sh/uv/).")
    if not pkg.import_names:
        return fail("isolation-setup", f"{pkg.rel}/src/ holds no import package (no src/<name>/__init__.py).",
                    f"Put the code under {pkg.rel}/src/{pkg.dist.replace('-', '_')}/.")
    closure = ws.dep_closure(pkg, include_dev=True)
    if not pkg.is_core and ws.by_dist().get(CORE_DIST) and ws.by_dist()[CORE_DIST] not in closure:
        closure.append(ws.by_dist()[CORE_DIST])
    missing = [p.dist for p in closure if p.dist not in wheels]
    if missing:
        return fail("isolation-setup", f"No wheel was built for {missing}.", "See the wheel build problems.")
    venv = workdir / "venv"
    proc = _run([uv, "venv", str(venv), "--python", sys.executable, "--quiet"], env=env, timeout=300)
    log.append(f"$ uv venv\n{proc.stdout}{proc.stderr}")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if proc.returncode != 0 or not python.exists():
        return fail("isolation-setup", f"`uv venv` failed:\n{proc.stderr[-2000:]}", "Check uv and the Python install.")
    members = ws.by_dist()
    # 1. the wheels and their declared dependencies only: what `pip install <package>` gives a user
    install = [str(wheels[p.dist]) for p in closure]
    proc = _run([uv, "pip", "install", "--python", str(python), *install], env=env, timeout=900)
    log.append(f"$ uv pip install {' '.join(install)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        return fail(
            "isolation-install",
            f"Installing {pkg.dist}'s wheel with its declared dependencies failed:\n{proc.stderr[-3000:]}",
            f"Make the dependencies in {pkg.file()} resolvable on their own (ranges compatible with the other "
            "members' versions).",
        )
    # registry: after load_all_methods only the installed members' methods
    expected = sorted({name for p in closure for name in p.entry_points})
    probe = textwrap.dedent(
        f"""
        import json, sys
        import peft_core
        from peft_core import load_all_methods, registered_methods
        before = sorted(registered_methods())
        mods = {pkg.import_names!r}
        files = {{}}
        for m in mods:
            mod = __import__(m)
            files[m] = mod.__file__
        after_import = sorted(registered_methods())
        everything = sorted(load_all_methods())
        print(json.dumps({{"before": before, "after_import": after_import, "all": everything, "files": files}}))
        """
    )
    proc = _run([str(python), "-I", "-c", probe], env=env, timeout=600, cwd=workdir)
    log.append(f"$ python -I -c <registry probe>\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        return fail(
            "isolation-import",
            f"`import {', '.join(pkg.import_names)}` fails with only {[p.dist for p in closure]} installed:\n{proc.stderr[-3000:]}",
            f"Declare every runtime import of {pkg.dist} in {pkg.file()} [project].dependencies (see the deptry check).",
        )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    problems: list[Problem] = []
    outside = {m: f for m, f in info["files"].items() if not str(f).startswith(str(venv))}
    if outside:
        problems.append(Problem("isolation-leak", pkg.dist, pkg.rel,
                                f"In the isolated venv {pkg.import_names} was imported from outside it: {outside}.",
                                "Unset PYTHONPATH / avoid .pth files pointing at the workspace."))
    if info["before"]:
        problems.append(Problem("isolation-registry", pkg.dist, pkg.rel,
                                f"`import peft_core` alone already registers {info['before']}.",
                                "peft-core must not register any method itself."))
    if info["all"] != expected:
        problems.append(
            Problem(
                "isolation-registry",
                pkg.dist,
                pkg.rel,
                f"With only {[p.dist for p in closure]} installed, load_all_methods() gives {info['all']}, expected "
                f"{expected} (the entry points of the installed members).",
                f"Make {pkg.dist}'s entry points and registrations agree, and don't register methods of other packages.",
            )
        )
    # save/load round trip of each method (and of core itself), still with only the declared dependencies:
    # deptry reads import statements, so it can't see a module imported inside a dependency (numpy by
    # `safetensors.torch.save_file` and `Tensor.numpy()`); this run does.
    problems += _isolated_round_trip(pkg, closure, python, env, workdir, log)
    # 2. then the dev group, and the package's own tests with a config of our own (not the root's)
    dev = [r for r in pkg.dependency_group("dev") if normalize(_requirement(r).name) not in members]
    install = [str(wheels[p.dist]) for p in closure] + dev
    if not any(normalize(_requirement(r).name) == "pytest" for r in dev):
        install.append("pytest")
    proc = _run([uv, "pip", "install", "--python", str(python), *install], env=env, timeout=900)
    log.append(f"$ uv pip install {' '.join(install)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        problems.append(
            Problem(
                "isolation-install",
                pkg.dist,
                pkg.rel,
                f"Installing {pkg.dist}'s dev group next to its wheel failed:\n{proc.stderr[-3000:]}",
                f"Make the dev group in {pkg.file()} resolvable with the package's dependencies.",
            )
        )
        return problems, "\n".join(log)
    tests = pkg.path / "tests"
    if tests.is_dir():
        ini = workdir / "pytest.ini"
        markers = _root_markers(ws.root)
        ini.write_text("[pytest]\nmarkers =\n" + "".join(f"    {m}\n" for m in markers))
        cmd = [
            str(python), "-m", "pytest", str(tests), "-c", str(ini), "--rootdir", str(pkg.path),
            "-p", "no:cacheprovider", "--import-mode=importlib", "-q", "-m", "not bench and not isolation and not quantized",
        ]
        proc = _run(cmd, env=env, timeout=1800, cwd=workdir)
        log.append(f"$ {' '.join(cmd)}\n{proc.stdout[-6000:]}{proc.stderr[-3000:]}")
        if proc.returncode not in (0, 5):  # 5: no tests collected
            missing = sorted(set(re.findall(r"No module named '([\w.]+)'", proc.stdout + proc.stderr)))
            hint = ""
            if missing:
                hint = (
                    f"The tests import {', '.join(repr(m.split('.')[0]) for m in missing)}, which the isolated "
                    f"environment lacks: add the distribution(s) to [dependency-groups] dev in {pkg.file()} "
                    "(a test-only dependency) or to [project].dependencies (if src/ needs it). "
                )
            problems.append(
                Problem(
                    "isolation-tests",
                    pkg.dist,
                    f"{pkg.rel}/tests",
                    f"{pkg.dist}'s tests fail with only {[p.dist for p in closure]} (wheels) and its dev group installed:\n"
                    f"{proc.stdout[-4000:]}{proc.stderr[-1500:]}",
                    hint
                    + f"Otherwise: a test imports something the package doesn't declare (add it to the `dev` group in "
                    f"{pkg.file()}), relies on another workspace package, or on a file not shipped in the wheel.",
                )
            )
    return problems, "\n".join(log)


ROUND_TRIP_SCRIPT = HERE.parent / "_isolation_roundtrip.py"


def _isolated_round_trip(
    pkg: Package, closure: list[Package], python: Path, env: dict[str, str], workdir: Path, log: list[str]
) -> list[Problem]:
    """Run `_isolation_roundtrip.py` for peft-core's own save/load and each method `pkg` provides."""
    script = workdir / ROUND_TRIP_SCRIPT.name
    shutil.copyfile(ROUND_TRIP_SCRIPT, script)
    methods = sorted(pkg.entry_points)
    cmd = [str(python), "-I", str(script), "--core", *methods]
    proc = _run(cmd, env=env, timeout=900, cwd=workdir)
    log.append(f"$ python -I {script.name} --core {' '.join(methods)}\n{proc.stdout[-4000:]}{proc.stderr[-3000:]}")
    results = []
    for line in proc.stdout.splitlines():
        try:
            results.append(json.loads(line))
        except ValueError:
            continue
    failed = [r for r in results if not r.get("ok")]
    if proc.returncode == 0 and not failed and len(results) == len(methods) + 1:
        return []
    detail = "\n".join(f"- {r['method']}: {' '.join(r.get('problems', []))[-2500:]}" for r in failed) or (
        f"(exit {proc.returncode})\n{proc.stderr[-3000:]}"
    )
    missing = sorted(set(re.findall(r"No module named '([\w.]+)'", proc.stdout + proc.stderr)))
    hint = (
        f"{', '.join(repr(m.split('.')[0]) for m in missing)} is imported at run time but not installed with "
        f"{pkg.dist}: declare the distribution in {pkg.file()} [project].dependencies (or in the dependency that "
        f"needs it, through its extra). "
        if missing
        else ""
    )
    return [
        Problem(
            "isolation-round-trip",
            pkg.dist,
            pkg.rel,
            f"With only {[p.dist for p in closure]} and their declared dependencies installed, a save/load round "
            f"trip fails:\n{detail}",
            hint + "Every module the package (or peft-core on its behalf) imports while saving and loading must come "
            "from a declared dependency.",
        )
    ]


def _root_markers(root: Path) -> list[str]:
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except OSError:
        return []
    return list(data.get("tool", {}).get("pytest", {}).get("ini_options", {}).get("markers", []))


# --------------------------------------------------------------------------------------------------
# Throwaway workspaces for the negative proofs
# --------------------------------------------------------------------------------------------------

METHOD_TEMPLATE = """
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from peft_core import BaseTuner, BaseTunerLayer, PeftConfig, register_peft_method


@dataclass
class {cls}Config(PeftConfig):
    peft_type: str = "{upper}"
    target_modules: Optional[Union[list[str], str]] = None
    init_weights: bool = True


class {cls}Layer(BaseTunerLayer):
    adapter_layer_names = ("{attr}",)

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.{attr} = nn.ParameterDict()

    def update_layer(self, adapter_name, init_weights=True):
        n = self.get_base_layer().out_features
        self.{attr}[adapter_name] = nn.Parameter(torch.ones(n) if init_weights else torch.linspace(0.5, 1.5, n))
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def forward(self, x):
        out = self.base_layer(x)
        if self._unmerge_if_disabled():
            return out
        for name in self.active_adapters:
            if name in self.{attr}:
                out = out * self.{attr}[name]
        return out


class {cls}Model(BaseTuner):
    prefix = "{prefix}"

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, {cls}Layer):
            target.update_layer(adapter_name, config.init_weights)
            return
        layer = {cls}Layer(target)
        layer.update_layer(adapter_name, config.init_weights)
        setattr(parent, target_name, layer)
{extra_model}

register_peft_method(name="{name}", config_cls={cls}Config, model_cls={cls}Model{kwargs})
"""


def method_source(
    name: str,
    *,
    prefix: str | None = None,
    shares_prefix_with: str | None = None,
    preamble: str = "",
    extra_model: str = "",
) -> str:
    """Source of a small working method package `__init__` (a per-feature scale, like (IA)3)."""
    kwargs = ""
    if prefix is not None:
        kwargs += f", prefix={prefix!r}"
    if shares_prefix_with is not None:
        kwargs += f", shares_prefix_with={shares_prefix_with!r}"
    real_prefix = prefix if prefix is not None else f"{name}_"
    body = METHOD_TEMPLATE.format(
        cls="".join(part.capitalize() for part in name.split("_")),
        upper=name.upper(),
        attr=f"{real_prefix}s",
        prefix=real_prefix,
        name=name,
        kwargs=kwargs,
        extra_model=textwrap.indent(textwrap.dedent(extra_model), "    ") if extra_model else "",
    )
    return textwrap.dedent(preamble) + body


class FakeWorkspace:
    """A uv workspace written to `root`, whose packages look installed through `site` (fake dist-info)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.site = self.root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        (self.root / "packages").mkdir(exist_ok=True)
        (self.root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["packages/*"]\n')
        self.sources: list[Path] = []

    def add(
        self,
        dist: str,
        modules: dict[str, str],
        *,
        dependencies: Sequence[str] = ("peft-core>=0.1,<0.2", "torch>=2.2"),
        entry_points: dict[str, str] | None = None,
        installed_entry_points: dict[str, str] | None = None,
        version: str = "0.1.0",
        dev: Sequence[str] = ("pytest>=8",),
        workspace_sources: Sequence[str] | None = None,
        pyproject_extra: str = "",
        changelog: str = "# Changelog\n\n## [Unreleased]\n",
        py_typed: bool = True,
        tests: dict[str, str] | None = None,
    ) -> Path:
        """Write packages/<dist>/ (pyproject, README, CHANGELOG, src/<import>/..., tests/) and its dist-info."""
        path = self.root / "packages" / dist
        import_name = dist.replace("-", "_")
        src = path / "src"
        for rel, source in modules.items():
            file = src / import_name / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(source))
        if py_typed:
            (src / import_name / "py.typed").write_text("")
        for rel, source in (tests if tests is not None else {"test_smoke.py": "def test_smoke():\n    pass\n"}).items():
            file = path / "tests" / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(source))
        (path / "README.md").write_text(f"# {dist}\n")
        (path / "CHANGELOG.md").write_text(changelog)
        if workspace_sources is None:
            workspace_sources = [
                d for d in (normalize(_requirement(r).name) for r in dependencies) if d.startswith("peft-")
            ]
        lines = [
            "[project]",
            f"name = {json.dumps(dist)}",
            f"version = {json.dumps(version)}",
            'requires-python = ">=3.10"',
            f"dependencies = {json.dumps(list(dependencies))}",
            "",
        ]
        if entry_points:
            lines += [f'[project.entry-points."{ENTRY_POINT_GROUP}"]']
            lines += [f"{k} = {json.dumps(v)}" for k, v in entry_points.items()] + [""]
        lines += ["[dependency-groups]", f"dev = {json.dumps(list(dev))}", ""]
        if workspace_sources:
            lines += ["[tool.uv.sources]"] + [f"{d} = {{ workspace = true }}" for d in workspace_sources] + [""]
        lines += [
            "[build-system]",
            'requires = ["hatchling>=1.25"]',
            'build-backend = "hatchling.build"',
            "",
            "[tool.hatch.build.targets.wheel]",
            f'packages = ["src/{import_name}"]',
            "",
        ]
        (path / "pyproject.toml").write_text("\n".join(lines) + pyproject_extra)
        info = self.site / f"{import_name}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
        meta += [f"Requires-Dist: {r}" for r in dependencies]
        (info / "METADATA").write_text("\n".join(meta) + "\n")
        (info / "top_level.txt").write_text(import_name + "\n")
        eps = entry_points if installed_entry_points is None else installed_entry_points
        if eps:
            body = "".join(f"{k} = {v}\n" for k, v in eps.items())
            (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{body}")
        self.sources.append(src)
        return path

    @property
    def pythonpath(self) -> list[Path]:
        return [*self.sources, self.site]

    def run(self, checks: Sequence[str], options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run `checks` on this workspace in a fresh interpreter with the packages on PYTHONPATH."""
        return run_checks_subprocess(self.root, checks, pythonpath=self.pythonpath, options=options)


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


_LIVE: set[subprocess.Popen] = set()


def kill_running() -> None:
    """Stop check subprocesses still running (e.g. when pytest is interrupted)."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()


def run_checks_subprocess(
    root: Path | str,
    checks: Sequence[str],
    pythonpath: Sequence[Path | str] = (),
    options: dict[str, Any] | None = None,
    timeout: float = 900,
) -> dict[str, Any]:
    """Run `checks` in a fresh interpreter (with `pythonpath` prepended); problems come back as Problem objects."""
    env = child_env(pythonpath)
    with tempfile.TemporaryDirectory(prefix="peft-ws-run-") as tmp:
        out = Path(tmp, "out.json")
        cmd = [sys.executable, str(HERE), "check", "--root", str(root), "--out", str(out), "--checks", ",".join(checks)]
        if options:
            cmd += ["--options", json.dumps(options)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        _LIVE.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        finally:
            _LIVE.discard(proc)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"running the workspace checks failed (exit {proc.returncode}):\n{stdout[-3000:]}\n{stderr[-6000:]}")
        data = json.loads(out.read_text())
    data["problems"] = {k: [Problem(**p) for p in v] for k, v in data["problems"].items()}
    return data


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
        parser.add_argument("--root", default=str(HERE.parents[1]))
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
