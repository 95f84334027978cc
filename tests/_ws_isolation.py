"""Check 5: isolation (one package and peft-core alone in a fresh venv)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from _ws_model import CORE_DIST, Package, Problem, Workspace, _requirement, normalize

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


ROUND_TRIP_SCRIPT = Path(__file__).resolve().parent / "_isolation_roundtrip.py"


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
