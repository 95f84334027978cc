"""The workspace as the checks see it: its packages found on disk, and the `Problem` every check reports
(what is wrong, where, how to fix it). Part of the workspace checks (see `_workspace_checks.py`)."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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
