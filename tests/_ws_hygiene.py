"""Check 6: package hygiene (pyproject, README, CHANGELOG, py.typed, ranges on dependencies) and wheels."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from _ws_layering import _lower, _next_minor
from _ws_model import (
    CORE_DIST,
    ENTRY_POINT_GROUP,
    Package,
    Problem,
    Workspace,
    _requirement,
    normalize,
)

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
