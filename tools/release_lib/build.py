"""``build``: build a package's wheel and sdist, check their contents, verify them in a fresh venv
(``verify.py``) and stamp the verified files (``stamp.py``); ``--all`` builds every member with one
``uv build --all-packages`` and verifies them in parallel."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from . import stamp
from .errors import EXIT_USAGE, ReleaseError
from .proc import uv
from .verify import Outcome, verify
from .workspace import CORE_DIST, ENTRY_POINT_GROUP, Package, discover, find_package, member_closure


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
    # by folder: that also builds packages kept out of the workspace (peft-compat, whose import name
    # `peft` can't share the workspace environment with Hugging Face's), which `--package` can't find
    args = ["build", pkg.rel, "-o", str(out_dir)]
    if wheel_only:
        args.append("--wheel")
    print(f"$ uv {' '.join(args)}")
    uv(root, *args)
    assert pkg.version is not None
    wheel = _pick(out_dir, pkg.name, pkg.version, "wheel")
    sdist = None if wheel_only else _pick(out_dir, pkg.name, pkg.version, "sdist")
    return wheel, sdist


def check_wheel(pkg: Package, wheel: Path) -> list[str]:
    """The wheel holds only the package's import package, its .dist-info and the files its pyproject
    force-includes."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        dist_infos = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
        expected_info = f"{pkg.name.replace('-', '_')}-{pkg.version}.dist-info"
        if dist_infos != {expected_info}:
            problems.append(f"{wheel.name}: expected one {expected_info}/, found {sorted(dist_infos)}")
        prefix = f"{pkg.import_name}/"
        # files the pyproject places at the top level on purpose (force-include), e.g. peft-compat's .pth
        wheel_target = pkg.pyproject.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        declared = set(wheel_target.get("force-include", {}).values())
        stray = [n for n in names if not n.startswith(prefix) and n.split("/", 1)[0] not in dist_infos
                 and n not in declared]
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


def _copy_into_dist(root: Path, pkg: Package, files: list[Path]) -> list[Path]:
    out_dir = root / "dist" / pkg.name
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in files:
        target = out_dir / f.name
        shutil.copyfile(f, target)
        copied.append(target)
    return copied


def _build_all(root: Path, pkgs: list[Package], tmp: Path) -> dict[str, tuple[Path, Path]]:
    """One ``uv build --all-packages`` (uv builds members in parallel); name -> (wheel, sdist) in tmp."""
    out_dir = tmp / "all"
    print(f"$ uv build --all-packages -o {out_dir}")
    uv(root, "build", "--all-packages", "-o", str(out_dir))
    built = {}
    for p in pkgs:
        assert p.version is not None
        try:
            built[p.name] = (_pick(out_dir, p.name, p.version, "wheel"), _pick(out_dir, p.name, p.version, "sdist"))
        except ReleaseError:  # not a workspace member (kept out of it, e.g. peft-compat): built by folder
            wheel, sdist = build_dists(root, p, out_dir)
            assert sdist is not None
            built[p.name] = (wheel, sdist)
    return built


def _static_problems(pkg: Package, wheel: Path, sdist: Path | None) -> list[str]:
    problems = check_wheel(pkg, wheel)
    if sdist is not None:
        problems += check_sdist(pkg, sdist)
    return problems


@dataclass
class _Result:
    pkg: Package
    files: list[Path]
    problems: list[str]
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stamped: Path | None = None


def _verify_one(root: Path, pkgs: list[Package], pkg: Package, files: list[Path], wheels: dict[str, Path],
                tmp: Path, slots: queue.Queue, *, python: str | None, venv: Path | None, keep_venv: bool,
                state: tuple[str | None, list[str]]) -> _Result:
    start = time.perf_counter()
    result = _Result(pkg, files, _static_problems(pkg, files[0], files[1] if len(files) > 1 else None))
    # one of `jobs` slots: a fresh venv each time, at the slot's path, so the bytecode compiled in
    # tmp/pycache by the slot's previous venv is reused (see verify.verify)
    slot = slots.get()
    workdir = tmp / f"slot-{slot}"
    if workdir.exists():  # the slot's last venv: deleted in the background (22k files with torch)
        trash = Path(tempfile.mkdtemp(prefix="trash-", dir=tmp))
        workdir.rename(trash / workdir.name)
        _delete_later(trash)
    workdir.mkdir()
    try:
        outcome = verify(pkgs, pkg, wheels, workdir, python=python, venv=venv, pycache=tmp / "pycache")
    except ReleaseError as exc:
        outcome = Outcome(problems=[str(exc)])
    except Exception:  # noqa: BLE001 - one package's crash must not hide the other packages' results
        outcome = Outcome(problems=["the release tool crashed while verifying it:\n" + traceback.format_exc()])
    finally:
        if keep_venv:
            kept = Path(tempfile.mkdtemp(prefix=f"release-venv-{pkg.name}-"))
            shutil.move(str(workdir), str(kept))
            result.lines.append(f"venv kept at {venv or kept / workdir.name / 'venv'}")
        slots.put(slot)
    result.problems += outcome.problems
    result.lines += outcome.lines
    result.seconds = time.perf_counter() - start
    if not result.problems and venv is None:
        commit, dirty = state
        result.stamped = stamp.write(root, pkg, files, outcome.wheels, outcome.cases, commit, dirty)
    return result


_DELETIONS: list[subprocess.Popen] = []


def _delete_later(path: Path) -> None:
    """``rm -rf`` in a child process (much faster than shutil.rmtree), waited for by ``_delete_now``."""
    if shutil.which("rm") is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    _DELETIONS.append(subprocess.Popen(["rm", "-rf", str(path)]))


def _delete_now(path: Path) -> None:
    _delete_later(path)
    while _DELETIONS:
        _DELETIONS.pop().wait()


def _print_result(root: Path, r: _Result) -> None:
    print(f"\n== {r.pkg.dist} {r.pkg.version} ({r.pkg.kind}), {r.seconds:.1f} s")
    for f in r.files:
        print(f"  built {f.relative_to(root).as_posix()}")
    for line in r.lines:
        print(f"  {line}")
    if r.problems:
        print(f"  build verification of {r.pkg.dist} FAILED:")
        for p in r.problems:
            print("    ERROR: " + p.replace("\n", "\n      "))
        return
    if r.stamped is None:
        print(f"  {r.pkg.dist} {r.pkg.version}: verified in a reused venv; no stamp (tag needs a fresh-venv build)")
        return
    data = json.loads(r.stamped.read_text())
    print(f"  {r.pkg.dist} {r.pkg.version}: verified; stamp {r.stamped.relative_to(root).as_posix()}")
    if data["dirty"]:
        print(f"  note: the working tree was dirty ({len(data['dirty'])} paths), so `tag` will refuse this build")


def cmd_build(root: Path, idents: list[str], *, all_pkgs: bool = False, python: str | None = None,
              venv: str | None = None, keep_venv: bool = False, skip_verify: bool = False,
              jobs: int | None = None) -> int:
    pkgs = discover(root)
    if all_pkgs == bool(idents):
        raise ReleaseError("give packages or --all", code=EXIT_USAGE)
    if venv and (all_pkgs or len(idents) > 1):
        raise ReleaseError("--venv reuses one venv, so it works with one package", code=EXIT_USAGE)
    targets = pkgs if all_pkgs else list({p.name: p for p in (find_package(pkgs, i) for i in idents)}.values())
    for pkg in pkgs if len(targets) > 1 else targets:
        if pkg.load_problems:
            raise ReleaseError(f"{pkg.rel}: " + "; ".join(pkg.load_problems))
    state = stamp.current_state(root)
    for pkg in targets:
        stamp.clear(root, pkg)
    tmp = Path(tempfile.mkdtemp(prefix="release-build-"))
    started = time.perf_counter()
    try:
        if len(targets) > 1:  # every member in one go (uv builds them in parallel, ~10 s in all)
            built = _build_all(root, pkgs, tmp)
            dists = {p.name: _copy_into_dist(root, p, list(built[p.name])) for p in targets}
            wheels = {name: files[0] for name, files in built.items()}
        else:
            pkg = targets[0]
            wheel, sdist = build_dists(root, pkg, root / "dist" / pkg.name)
            dists = {pkg.name: [wheel] + ([sdist] if sdist else [])}
            wheels = {pkg.name: wheel}
            if not skip_verify:
                for member in member_closure(pkgs, pkg, pkg.verify.with_members):
                    wheels[member.name], _ = build_dists(root, member, tmp / "wheels", wheel_only=True)
        if skip_verify:
            failed = 0
            for pkg in targets:
                files = dists[pkg.name]
                problems = _static_problems(pkg, files[0], files[1] if len(files) > 1 else None)
                _print_result(root, _Result(pkg, files, problems, ["not verified (--no-verify): no stamp"]))
                failed += bool(problems)
            return 1 if failed else 0
        venv_path = Path(venv).resolve() if venv else None
        n_jobs = jobs or min(len(targets), os.cpu_count() or 1)
        results: list[_Result] = []
        slots: queue.Queue = queue.Queue()
        for slot in range(max(1, n_jobs)):
            slots.put(slot)
        with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
            futures = [pool.submit(_verify_one, root, pkgs, p, dists[p.name], wheels, tmp, slots, python=python,
                                   venv=venv_path, keep_venv=keep_venv, state=state) for p in targets]
            for fut in as_completed(futures):
                results.append(fut.result())
                _print_result(root, results[-1])
                sys.stdout.flush()
    finally:
        _delete_now(tmp)
    failed = [r for r in results if r.problems]
    if len(targets) > 1:
        print(f"\nbuild: {len(results) - len(failed)} of {len(results)} packages verified "
              f"in {time.perf_counter() - started:.0f} s ({n_jobs} at a time)")
        for r in sorted(results, key=lambda r: r.pkg.name):
            print(f"  {'ok    ' if not r.problems else 'FAILED'} {r.pkg.dist} {r.pkg.version}  {r.seconds:.1f} s")
    return 1 if failed else 0
