"""``build``: build a package's wheel and sdist, then verify them in a throwaway venv."""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from .errors import ReleaseError
from .proc import run, uv
from .workspace import CORE_DIST, ENTRY_POINT_GROUP, Package, core_package, discover, find_package

SMOKE_MARK = "@@RELEASE-SMOKE@@"

# Runs inside the fresh venv as `python -I -c SMOKE_SCRIPT <import name> <dist> <group>`.
SMOKE_SCRIPT = r"""
import importlib, importlib.metadata as md, json, os, re, sys, traceback
import_name, dist, group = sys.argv[1:4]
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
rep = {"module_file": None, "entry_points": [], "smoke_tested": [], "registered": [], "smoke_mode": None, "errors": []}
try:
    mod = importlib.import_module(import_name)
    rep["module_file"] = getattr(mod, "__file__", None)
    where = os.path.realpath(rep["module_file"] or "")
    if not where.startswith(os.path.realpath(sys.prefix)):
        rep["errors"].append(f"{import_name} was imported from {where}, not from the venv {sys.prefix}")
except Exception:
    rep["errors"].append(f"import {import_name} failed:\n" + traceback.format_exc())
loaded = []
for ep in md.entry_points(group=group):
    if ep.dist is None or canon(ep.dist.name) != canon(dist):
        continue
    rep["entry_points"].append(f"{ep.name} = {ep.value}")
    try:
        ep.load()
        loaded.append(ep.name)
    except Exception:
        rep["errors"].append(f"entry point {ep.name} = {ep.value} failed to load:\n" + traceback.format_exc())
smoke = None
try:
    smoke = getattr(importlib.import_module("peft_core.testing"), "smoke_test", None)
except ModuleNotFoundError as exc:
    if exc.name not in ("peft_core", "peft_core.testing"):
        rep["errors"].append("import peft_core.testing failed:\n" + traceback.format_exc())
except Exception:
    rep["errors"].append("import peft_core.testing failed:\n" + traceback.format_exc())
if smoke is None:
    # fallback: the entry points imported; if the core can resolve a method by name, check
    # that importing the package really registered it
    load_method = None
    for modname in ("peft_core", "peft_core.discovery"):
        try:
            load_method = load_method or getattr(importlib.import_module(modname), "load_method", None)
        except Exception:
            pass
    if load_method is None:
        rep["smoke_mode"] = "import-only (peft_core.testing.smoke_test not available)"
    else:
        rep["smoke_mode"] = "registration check with peft_core.load_method (no peft_core.testing.smoke_test)"
        for name in loaded:
            try:
                load_method(name)
                rep["registered"].append(name)
            except Exception:
                rep["errors"].append(f"peft_core.load_method({name!r}) failed:\n" + traceback.format_exc())
else:
    rep["smoke_mode"] = "peft_core.testing.smoke_test"
    for name in loaded:
        try:
            smoke(name)
            rep["smoke_tested"].append(name)
        except Exception:
            rep["errors"].append(f"peft_core.testing.smoke_test({name!r}) failed:\n" + traceback.format_exc())
print(MARK + json.dumps(rep))
""".replace("MARK", repr(SMOKE_MARK))


def _pick(out_dir: Path, pkg_name: str, version: str, kind: str) -> Path:
    want = Version(version)
    for f in sorted(out_dir.iterdir()):
        try:
            if kind == "wheel" and f.suffix == ".whl":
                name, ver, _, _ = parse_wheel_filename(f.name)
            elif kind == "sdist" and f.name.endswith(".tar.gz"):
                name, ver = parse_sdist_filename(f.name)
            else:
                continue
        except ValueError:
            continue
        if name == pkg_name and ver == want:
            return f
    raise ReleaseError(f"no {kind} of {pkg_name} {version} in {out_dir} after uv build")


def build_dists(root: Path, pkg: Package, out_dir: Path, *, wheel_only: bool = False) -> tuple[Path, Path | None]:
    args = ["build", "--package", pkg.dist, "-o", str(out_dir)]
    if wheel_only:
        args.append("--wheel")
    print(f"$ uv {' '.join(args)}")
    uv(root, *args)
    assert pkg.version is not None
    wheel = _pick(out_dir, pkg.name, pkg.version, "wheel")
    sdist = None if wheel_only else _pick(out_dir, pkg.name, pkg.version, "sdist")
    return wheel, sdist


def check_wheel(pkg: Package, wheel: Path) -> list[str]:
    """The wheel holds only the package's import package and its .dist-info."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        dist_infos = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
        expected_info = f"{pkg.name.replace('-', '_')}-{pkg.version}.dist-info"
        if dist_infos != {expected_info}:
            problems.append(f"{wheel.name}: expected one {expected_info}/, found {sorted(dist_infos)}")
        prefix = f"{pkg.import_name}/"
        stray = [n for n in names if not n.startswith(prefix) and n.split("/", 1)[0] not in dist_infos]
        if stray:
            problems.append(
                f"{wheel.name} contains files outside {prefix} and its .dist-info: {', '.join(stray[:10])}"
                f"{' ...' if len(stray) > 10 else ''}. Fix [tool.hatch.build.targets.wheel] in {pkg.rel}/pyproject.toml"
            )
        if f"{prefix}__init__.py" not in names:
            problems.append(f"{wheel.name} has no {prefix}__init__.py")
        if (pkg.dir / "src" / pkg.import_name / "py.typed").is_file() and f"{prefix}py.typed" not in names:
            problems.append(f"{wheel.name} lacks {prefix}py.typed although the source tree has it")
        if expected_info in dist_infos:
            meta = zf.read(f"{expected_info}/METADATA").decode("utf-8", "replace")
            problems += _check_metadata(pkg, wheel, meta)
            if pkg.entry_points:
                eps = f"{expected_info}/entry_points.txt"
                text = zf.read(eps).decode() if eps in names else ""
                if f"[{ENTRY_POINT_GROUP}]" not in text:
                    problems.append(f"{wheel.name} has no [{ENTRY_POINT_GROUP}] entry points though pyproject declares them")
    return problems


def _check_metadata(pkg: Package, wheel: Path, meta: str) -> list[str]:
    problems: list[str] = []
    if pkg.core_requirement is None:
        return problems
    found = None
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:"):
            try:
                req = Requirement(line.split(":", 1)[1].strip())
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) == CORE_DIST:
                found = req
    if found is None:
        problems.append(f"{wheel.name}: METADATA has no Requires-Dist on {CORE_DIST}")
    elif found.url or found.specifier != pkg.core_requirement.specifier:
        problems.append(
            f"{wheel.name}: METADATA requires {found}, but pyproject declares {pkg.core_requirement}"
        )
    return problems


def check_sdist(pkg: Package, sdist: Path) -> list[str]:
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
    top = names[0].split("/", 1)[0] if names else ""
    problems = []
    for need in ("pyproject.toml", f"src/{pkg.import_name}/__init__.py"):
        if f"{top}/{need}" not in names:
            problems.append(f"{sdist.name} lacks {need}")
    return problems


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def make_venv(root: Path, venv: Path, python: str | None) -> Path:
    if _venv_python(venv).exists():
        print(f"reusing venv {venv}")
    else:
        args = ["venv", "--quiet", str(venv)]
        if python:
            args += ["--python", python]
        uv(root, *args)
    return _venv_python(venv)


def smoke_test(py: Path, pkg: Package, cwd: Path) -> tuple[dict, list[str]]:
    proc = run([str(py), "-I", "-c", SMOKE_SCRIPT, pkg.import_name, pkg.name, ENTRY_POINT_GROUP], cwd, check=False)
    report = None
    for line in proc.stdout.splitlines():
        if line.startswith(SMOKE_MARK):
            report = json.loads(line[len(SMOKE_MARK):])
    if report is None:
        return {}, [f"smoke test crashed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"]
    problems = list(report["errors"])
    if proc.returncode != 0 and not problems:
        problems.append(f"smoke test exited {proc.returncode}:\n{proc.stderr}")
    declared = sorted(pkg.entry_points)
    got = sorted(e.split(" = ", 1)[0] for e in report["entry_points"])
    if declared != got:
        problems.append(f"installed {ENTRY_POINT_GROUP} entry points {got} differ from pyproject's {declared}")
    if pkg.is_method and not declared:
        problems.append(
            f"{pkg.dist} declares no [project.entry-points.\"{ENTRY_POINT_GROUP}\"], so {CORE_DIST} cannot "
            "discover it. Fix: add one in its pyproject.toml"
        )
    return report, problems


def cmd_build(root: Path, ident: str, *, python: str | None, venv: str | None, keep_venv: bool,
              skip_verify: bool = False) -> int:
    pkgs = discover(root)
    pkg = find_package(pkgs, ident)
    if pkg.load_problems:
        raise ReleaseError(f"{pkg.rel}: " + "; ".join(pkg.load_problems))
    out_dir = root / "dist" / pkg.name
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel, sdist = build_dists(root, pkg, out_dir)
    print(f"built {wheel.relative_to(root)}\nbuilt {sdist.relative_to(root) if sdist else '-'}")

    core_wheel = None
    core_dir = root / "dist" / CORE_DIST
    if pkg.core_requirement is not None:
        core = core_package(pkgs)
        if core is None:
            raise ReleaseError(f"{pkg.dist} depends on {CORE_DIST}, which is not in this workspace")
        core_dir.mkdir(parents=True, exist_ok=True)
        core_wheel, _ = build_dists(root, core, core_dir, wheel_only=True)
        print(f"built {core_wheel.relative_to(root)}")

    problems = check_wheel(pkg, wheel)
    if sdist is not None:
        problems += check_sdist(pkg, sdist)
    with zipfile.ZipFile(wheel) as zf:
        print(f"\n{wheel.name} contents:")
        for n in sorted(zf.namelist()):
            print(f"  {n}")
    if skip_verify:
        return _finish(pkg, problems, None)

    tmp = Path(tempfile.mkdtemp(prefix=f"release-verify-{pkg.name}-"))
    venv_path = Path(venv).resolve() if venv else tmp / "venv"
    try:
        py = make_venv(root, venv_path, python)
        install = ["pip", "install", "--quiet", "--python", str(py)]
        if core_dir.is_dir():
            install += ["--find-links", str(core_dir)]
        install += ["--reinstall-package", pkg.dist, str(wheel)]
        if core_wheel is not None:
            # the workspace's own core, and only it: the install then fails (as it would on PyPI
            # after release) when the package's declared range does not admit it
            install += ["--reinstall-package", CORE_DIST, str(core_wheel)]
        print(f"\n$ uv {' '.join(install)}")
        proc = uv(root, *install, check=False)
        if proc.returncode != 0:
            problems.append(
                f"installing {wheel.name}{' with ' + core_wheel.name if core_wheel else ''} into a fresh venv "
                f"failed:\n{(proc.stdout + proc.stderr).strip()}"
                + (f"\n(if the conflict is about {CORE_DIST}: {pkg.dist}'s declared range "
                   f"\"{pkg.core_requirement_text}\" does not admit the workspace's {CORE_DIST}; see `plan`)"
                   if core_wheel is not None else "")
            )
            return _finish(pkg, problems, None)
        report, smoke_problems = smoke_test(py, pkg, tmp)
        problems += smoke_problems
        return _finish(pkg, problems, report)
    finally:
        if keep_venv or venv:
            print(f"venv kept at {venv_path}")
        if not keep_venv:
            shutil.rmtree(tmp, ignore_errors=True)


def _finish(pkg: Package, problems: list[str], report: dict | None) -> int:
    if report:
        print(f"\nsmoke test in a fresh venv ({report.get('smoke_mode')}):")
        print(f"  imported {pkg.import_name} from {report.get('module_file')}")
        for ep in report.get("entry_points", []):
            print(f"  entry point {ep}: loaded")
        for name in report.get("registered", []):
            print(f"  load_method({name!r}): registered")
        for name in report.get("smoke_tested", []):
            print(f"  smoke_test({name!r}): passed")
    if problems:
        print(f"\nbuild verification of {pkg.dist} FAILED:")
        for p in problems:
            print("  ERROR: " + p.replace("\n", "\n    "))
        return 1
    print(f"\n{pkg.dist} {pkg.version}: wheel and sdist in dist/{pkg.name}/ verified.")
    return 0
