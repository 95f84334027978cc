"""Check 2: layering (method packages import only peft-core and what they declare) and declared dependencies
(the dependency graph, deptry)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _ws_imports import ImportEdge, ImportGraph, _strongly_connected
from _ws_model import Package, Problem, Workspace, normalize

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
