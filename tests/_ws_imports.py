"""Check 1: import cycles (grimp graph of every workspace package) and every module importing first in a
fresh interpreter."""

from __future__ import annotations

import ast
import importlib
import itertools
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from _ws_jobs import _short_error, job, run_fresh
from _ws_model import Problem, Workspace

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
