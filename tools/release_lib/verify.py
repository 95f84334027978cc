"""Verify one package's built wheel in a fresh venv, the way users will install it.

By kind (``Package.kind``):

* every package: its wheel and the freshly built wheels of the members it needs (peft-core, and
  e.g. peft-lora for peft-adalora) go into a new venv with nothing else from the workspace; exactly
  those members must be installed, and its import package must import from the venv;
* ``method``: each ``peft.methods`` entry point loads and registers its method, and the method's
  conformance cases pass (``conformance.check_installed``), first with only the declared
  dependencies, then the cases that ask for more (e.g. transformers for a tiny Llama);
* anything else that depends on peft-core must say how it is checked in
  ``[tool.peft-release.verify]`` (e.g. peft-cli: members to install next to it, commands to run);
  any package may add such a table (peft-core runs peft-lora's cases against itself).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .conformance import ProbeReport, check_installed
from .errors import ReleaseError
from .proc import clean_env
from .venvs import installed, make_venv, pip_install, venv_bin
from .workspace import CORE_DIST, ENTRY_POINT_GROUP, VERIFY_TABLE, Package, member_closure

COMMAND_TIMEOUT_S = 900


@dataclass
class Outcome:
    """What verification found: ``problems`` (empty = verified), ``lines`` (what was checked),
    ``wheels`` (member -> wheel file used, for the stamp)."""

    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    wheels: dict[str, Path] = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)


def verify(pkgs: list[Package], pkg: Package, wheels: dict[str, Path], workdir: Path, *,
           python: str | None = None, venv: Path | None = None, pycache: Path | None = None) -> Outcome:
    """Run every check of ``pkg`` in a venv at ``venv`` (default: ``workdir/venv``).

    ``wheels`` maps canonical member names to built wheels; it must hold ``pkg`` and the members
    it needs (and those its ``with-members`` name). ``pycache``: a bytecode folder for the venv's
    interpreter (``-X pycache_prefix``). The files in the venv are always fresh, but venvs made one
    after another at the same path can share their bytecode this way (Python checks each file
    against its source's size and mtime, which uv's cache links keep), so torch's thousands of
    modules are compiled once per ``build --all`` instead of once per package."""
    out = Outcome()
    spec = pkg.verify
    if pkg.kind == "unknown":
        out.problems.append(
            f"{pkg.dist} depends on {CORE_DIST} but has no [project.entry-points.\"{ENTRY_POINT_GROUP}\"] (a "
            f"method package) and no [{'.'.join(VERIFY_TABLE)}] commands (anything else), so the release "
            f"tool cannot check it. Fix: add the entry point, or the commands that prove it works, to "
            f"{pkg.rel}/pyproject.toml (see docs/releasing.md)"
        )
        return out
    needed = member_closure(pkgs, pkg)
    helpers = [p for p in member_closure(pkgs, pkg, spec.with_members) if p not in needed]
    missing = [p.dist for p in [pkg, *needed, *helpers] if p.name not in wheels]
    if missing:
        raise ReleaseError(f"no built wheel of {', '.join(missing)} to verify {pkg.dist} with")
    out.wheels = {p.name: wheels[p.name] for p in [pkg, *needed, *helpers]}

    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    py = make_venv(workdir, venv or workdir / "venv", python)
    # 1. the package as users get it: its wheel, the members it needs, their declared dependencies
    if not _install(out, py, workdir, pkg, [pkg, *needed], reinstall=venv is not None):
        return out
    have = installed(py, workdir)
    ours = {p.name for p in pkgs}
    got = sorted(n for n in have if n in ours)
    want = sorted(p.name for p in [pkg, *needed])
    if got != want and venv is None:
        out.problems.append(f"installing {pkg.dist}'s wheel brought in the members {got}, expected exactly {want}")
    out.lines.append(f"installed {', '.join(f'{n} {have.get(n)}' for n in want)} (wheels) with declared dependencies only")
    reports = [check_installed(py, pkg.name, pkg.import_name, "bare", scratch, pycache)]
    if pkg.kind == "method":
        got_eps = sorted(e.split(" = ", 1)[0] for e in reports[0].entry_points)
        if got_eps != sorted(pkg.entry_points):
            out.problems.append(f"installed {ENTRY_POINT_GROUP} entry points {got_eps} differ from "
                                f"pyproject's {sorted(pkg.entry_points)}")
    # 2. members the checks need besides (spec.with_members), and their methods' cases
    if helpers:
        if not _install(out, py, workdir, pkg, helpers, reinstall=venv is not None):
            return out
        out.lines.append(f"installed for the checks: {', '.join(p.dist for p in helpers)} (wheels)")
        reports += [check_installed(py, h.name, h.import_name, "bare", scratch, pycache)
                    for h in helpers if h.kind == "method"]
    # 3. what the remaining cases and the commands ask for, then those cases
    extra = list(spec.requires)
    for report in reports:
        owner = next(p for p in pkgs if p.name == report.dist)
        for raw in report.pending_requirements():
            req = _pinned(raw, owner, pkgs)
            if req not in extra:
                extra.append(req)
    if extra:
        proc = pip_install(py, workdir, extra)
        if proc.returncode != 0:
            out.problems.append(f"installing {' '.join(extra)} for the checks failed:\n{(proc.stdout + proc.stderr).strip()}")
            return out
        out.lines.append(f"installed for the checks: {' '.join(extra)}")
        by_name = {p.name: p for p in pkgs}
        for report in reports:
            if report.pending_requirements():
                member = by_name[report.dist]
                report.merge_extra(check_installed(py, member.name, member.import_name, "extra", scratch, pycache,
                                                   only=report.pending()))
    for report in reports:
        _report_lines(out, report, own=report.dist == pkg.name)
    # 4. the package's own commands
    for command in spec.commands:
        _command(out, py, scratch, command, pycache)
    return out


def _pinned(raw: str, pkg: Package, pkgs: list[Package]) -> str:
    """A case's requirement as written, or, when it is a bare name (the kit names importable
    modules, e.g. "transformers"), the range the package's (else any member's) dev group gives it."""
    try:
        req = Requirement(raw)
    except InvalidRequirement:
        return raw
    if req.specifier or req.url or req.extras:
        return raw
    for source in [pkg, *pkgs]:
        for candidate in source.dependency_group("dev"):
            try:
                if canonicalize_name(Requirement(candidate).name) == canonicalize_name(req.name):
                    return candidate
            except InvalidRequirement:
                continue
    return raw


def _install(out: Outcome, py: Path, cwd: Path, pkg: Package, members: list[Package], *, reinstall: bool) -> bool:
    files = [str(out.wheels[p.name]) for p in members]
    extra_args: list[str] = []
    if reinstall:
        for p in members:
            extra_args += ["--reinstall-package", p.dist]
    proc = pip_install(py, cwd, files, extra_args=extra_args)
    if proc.returncode == 0:
        return True
    hint = ""
    if pkg.core_requirement is not None:
        hint = (f"\n(if the conflict is about {CORE_DIST}: {pkg.dist}'s declared range \"{pkg.core_requirement_text}\" "
                f"does not admit the workspace's {CORE_DIST}; see `plan`)")
    out.problems.append(f"installing {', '.join(Path(f).name for f in files)} into a fresh venv failed:\n"
                        f"{(proc.stdout + proc.stderr).strip()}{hint}")
    return False


def _report_lines(out: Outcome, report: ProbeReport, *, own: bool) -> None:
    prefix = "" if own else f"[{report.dist}] "
    out.problems += [prefix + e for e in report.errors]
    if report.module_file:
        out.lines.append(f"{prefix}imported from {report.module_file}")
    for name in report.registered:
        out.lines.append(f"{prefix}entry point {name}: loaded, registered")
    for case in report.cases:
        out.cases.append({"dist": report.dist, **case})
        mark = {"passed": "passed", "failed": "FAILED", "pending": "NOT RUN"}[case["status"]]
        needs = f" (needs {', '.join(case['requires'])})" if case["requires"] else ""
        secs = f", {case['seconds']} s" if case["seconds"] is not None else ""
        kind = "conformance case"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(case.get("checks", {}).items()))
        detail = f" ({counts} checks)" if counts else ""
        out.lines.append(f"{prefix}{kind} {case['method']}/{case['id']}{needs}: {mark}{detail}{secs}")
        out.lines += [f"    warning: {w}" for w in case.get("warnings", [])]
        if case["status"] == "pending":
            out.problems.append(f"{prefix}{kind} {case['method']}/{case['id']} was not run")


def _command(out: Outcome, py: Path, scratch: Path, command: str, pycache: Path | None) -> None:
    argv = [a.replace("{tmp}", str(scratch)) for a in shlex.split(command)]
    env = clean_env()
    if pycache:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PATH"] = str(venv_bin(py.parent.parent)) + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(py.parent.parent)
    exe = venv_bin(py.parent.parent) / argv[0]
    if exe.exists():
        argv[0] = str(exe)
    try:
        proc = subprocess.run(argv, cwd=scratch, env=env, text=True, capture_output=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        out.problems.append(f"command `{command}`: {argv[0]} is not installed in the venv")
        return
    except subprocess.TimeoutExpired:
        out.problems.append(f"command `{command}` ran over {COMMAND_TIMEOUT_S} s")
        return
    if proc.returncode != 0:
        out.problems.append(f"command `{command}` exited {proc.returncode}:\n{(proc.stdout + proc.stderr).strip()[-4000:]}")
    else:
        out.lines.append(f"$ {command}: ok")
