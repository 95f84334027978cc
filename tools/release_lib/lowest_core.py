"""``lowest-core``: run a method package's tests against the lowest peft-core release its
declared range admits, built from that release's git tag."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .build import _pick
from .errors import EXIT_NO_BASELINE, EXIT_OK, EXIT_PROBLEMS, ReleaseError
from .gitinfo import release_tags
from .plan import CMD
from .proc import git, run, uv
from .venvs import make_venv
from .workspace import CORE_DIST, Package, core_package, discover, find_package, member_closure


def lowest_admitted(tags: list[tuple[Version, str]], req: Requirement) -> tuple[Version, str] | None:
    admitted = [t for t in tags if req.specifier.contains(t[0], prereleases=True)]
    return min(admitted) if admitted else None


def _test_requirements(pkg: Package, members: set[str], extra: list[str]) -> list[str]:
    reqs: list[str] = []
    for raw in pkg.dependency_group("dev") + pkg.dependency_group("test") + list(extra):
        try:
            name = canonicalize_name(Requirement(raw).name)
        except InvalidRequirement:
            raise ReleaseError(f"{pkg.rel}: test requirement {raw!r} is not a valid requirement") from None
        if name in members:
            # workspace packages come from wheels built here, not from the index
            print(f"  (skipping workspace package {raw!r} from {pkg.dist}'s test dependencies)")
            continue
        if raw not in reqs:
            reqs.append(raw)
    if not any(canonicalize_name(Requirement(r).name) == "pytest" for r in reqs):
        reqs.append("pytest")
    return reqs


def run_one(root: Path, pkgs: list[Package], pkg: Package, *, python: str | None, extra: list[str],
            core_version: str | None, pytest_args: list[str], index: str | None = None) -> tuple[int, str]:
    """Returns (exit code, one-line summary)."""
    req = pkg.core_requirement
    if req is None:
        raise ReleaseError(f"{pkg.dist} does not depend on {CORE_DIST}; lowest-core only applies to method packages")
    core = core_package(pkgs)
    if core is None:
        raise ReleaseError(f"there is no {CORE_DIST} package under packages/")
    if index is not None:
        return _run_from_index(root, pkgs, pkg, index, python=python, extra=extra, core_version=core_version,
                               pytest_args=pytest_args)
    tags = release_tags(root, core)
    if core_version is not None:
        chosen = next((t for t in tags if t[0] == Version(core_version)), None)
        if chosen is None:
            return EXIT_NO_BASELINE, f"{pkg.dist}: no tag {core.tag_for(core_version)}; nothing to test against"
    else:
        chosen = lowest_admitted(tags, req)
        if chosen is None:
            listed = ", ".join(t for _, t in tags) or "none"
            return EXIT_NO_BASELINE, (
                f"{pkg.dist}: no {CORE_DIST} release tag is admitted by \"{pkg.core_requirement_text}\" "
                f"({CORE_DIST} tags: {listed}), "
                f"so there is no released lowest core to test against. This is expected before the first "
                f"{CORE_DIST} release in that range: release and tag it (`{CMD} tag {CORE_DIST}`), "
                "or fix the range's lower bound"
            )
    version, tag = chosen
    print(f"== {pkg.dist}: testing against {CORE_DIST} {version} (tag {tag}), lowest admitted by \"{pkg.core_requirement_text}\"")

    tmp = Path(tempfile.mkdtemp(prefix=f"release-lowest-{pkg.name}-"))
    try:
        # 1. peft-core's sources as of the tag, built into a wheel
        archive = tmp / "core.tar"
        git(root, "archive", "--format=tar", "-o", str(archive), tag, "--", core.rel,
            what=f"git archive {tag} -- {core.rel}")
        src = tmp / "src"
        with tarfile.open(archive) as tf:
            try:
                tf.extractall(src, filter="data")
            except TypeError:  # Python without tarfile extraction filters
                tf.extractall(src)
        wheels = tmp / "wheels"
        uv(root, "build", "--wheel", "-o", str(wheels), str(src / core.rel), what=f"building {CORE_DIST} from {tag}")
        core_wheel = _pick(wheels, core.name, str(version), "wheel")
        # 2. the method package, and the other members it needs (peft-lora for peft-adalora), from
        #    the working tree
        items = [str(core_wheel)]
        for member in [pkg, *(m for m in member_closure(pkgs, pkg) if not m.is_core)]:
            uv(root, "build", "--package", member.dist, "--wheel", "-o", str(wheels))
            assert member.version is not None
            items.insert(0, str(_pick(wheels, member.name, member.version, "wheel")))
        # 3. a fresh venv with the wheels and the package's test dependencies; 4. the tests
        py = make_venv(tmp, tmp / "venv", python)
        return _install_and_test(root, pkgs, pkg, py, tmp, items, [], version, extra, pytest_args,
                                 where=f"tag {tag}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install_and_test(root: Path, pkgs: list[Package], pkg: Package, py: Path, tmp: Path, items: list[str],
                      install_args: list[str], version: Version | None, extra: list[str], pytest_args: list[str],
                      *, where: str) -> tuple[int, str]:
    """Install ``items`` (the package's wheel and a peft-core), check the peft-core version (the lowest
    admitted one when ``version`` is None: whatever the resolver picked is reported), then the test
    dependencies, then run the package's tests from the working tree."""
    print(f"$ uv pip install {' '.join(install_args)} {' '.join(Path(i).name for i in items)}")
    proc = uv(tmp, "pip", "install", "--quiet", "--python", str(py), *install_args, *items, check=False)
    if proc.returncode != 0:
        return EXIT_PROBLEMS, (f"{pkg.dist}: could not install with {CORE_DIST} ({where}):\n"
                               f"{(proc.stdout + proc.stderr).strip()}")
    got = Version(run([str(py), "-I", "-c", f"import importlib.metadata as m; print(m.version({CORE_DIST!r}))"],
                      tmp).stdout.strip())
    if version is not None and got != version:
        return EXIT_PROBLEMS, f"{pkg.dist}: expected {CORE_DIST} {version} in the test venv, found {got}"
    reqs = _test_requirements(pkg, {p.name for p in pkgs}, extra)
    print(f"$ uv pip install {' '.join(reqs)}")
    proc = uv(tmp, "pip", "install", "--quiet", "--python", str(py), *reqs, check=False)
    if proc.returncode != 0:
        return EXIT_PROBLEMS, f"{pkg.dist}: could not install its test dependencies:\n{(proc.stdout + proc.stderr).strip()}"
    again = Version(run([str(py), "-I", "-c", f"import importlib.metadata as m; print(m.version({CORE_DIST!r}))"],
                        tmp).stdout.strip())
    if again != got:
        return EXIT_PROBLEMS, (f"{pkg.dist}: installing its test dependencies moved {CORE_DIST} from {got} to "
                               f"{again}; nothing to test")
    tests = f"{pkg.rel}/tests"
    print(f"$ python -m pytest {tests} {' '.join(pytest_args)}   ({CORE_DIST} {got}, {where})")
    rc = run([str(py), "-m", "pytest", tests, *pytest_args], root, check=False, capture=False).returncode
    if rc != 0:
        return EXIT_PROBLEMS, f"{pkg.dist}: tests FAILED against {CORE_DIST} {got} ({where}) (pytest exit {rc})"
    return EXIT_OK, f"{pkg.dist}: tests passed against {CORE_DIST} {got} ({where})"


def _run_from_index(root: Path, pkgs: list[Package], pkg: Package, index: str, *, python: str | None,
                    extra: list[str], core_version: str | None, pytest_args: list[str]) -> tuple[int, str]:
    """The released peft-core from ``index``: the lowest version there that the package's range admits
    (uv's ``--resolution lowest-direct`` on the range; ``core_version`` pins one instead)."""
    want = f"{CORE_DIST}=={core_version}" if core_version else f"{CORE_DIST}{pkg.core_requirement.specifier}"
    print(f"== {pkg.dist}: testing against the lowest {CORE_DIST} on {index} admitted by \"{pkg.core_requirement_text}\"")
    tmp = Path(tempfile.mkdtemp(prefix=f"release-lowest-{pkg.name}-"))
    try:
        wheels = tmp / "wheels"
        uv(root, "build", "--package", pkg.dist, "--wheel", "-o", str(wheels))
        assert pkg.version is not None
        pkg_wheel = _pick(wheels, pkg.name, pkg.version, "wheel")
        py = make_venv(tmp, tmp / "venv", python)
        # the index comes first for every name it has (uv's first-index strategy): our packages from
        # there, torch and the rest from the default index
        args = ["--index", index, "--resolution", "lowest-direct"]
        return _install_and_test(root, pkgs, pkg, py, tmp, [str(pkg_wheel), want], args,
                                 Version(core_version) if core_version else None, extra, pytest_args,
                                 where=f"from {index}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_lowest_core(root: Path, ident: str | None, *, all_pkgs: bool, python: str | None, extra: list[str],
                    core_version: str | None, skip_missing: bool, pytest_args: list[str],
                    index: str | None = None) -> int:
    pkgs = discover(root)
    if all_pkgs:
        targets = [p for p in pkgs if p.core_requirement is not None]
        if not targets:
            print(f"no package depends on {CORE_DIST}; nothing to check")
            return EXIT_OK
    elif ident:
        targets = [find_package(pkgs, ident)]
    else:
        raise ReleaseError("name a package, or pass --all", code=2)
    results = [run_one(root, pkgs, p, python=python, extra=extra, core_version=core_version,
                       pytest_args=pytest_args, index=index) for p in targets]
    print("\nlowest-core summary:")
    for code, line in results:
        label = {EXIT_OK: "PASS", EXIT_PROBLEMS: "FAIL", EXIT_NO_BASELINE: "SKIP" if skip_missing else "NO TAG"}[code]
        print(f"  {label}: {line}")
    codes = {c for c, _ in results}
    if EXIT_PROBLEMS in codes:
        return EXIT_PROBLEMS
    if EXIT_NO_BASELINE in codes and not skip_missing:
        return EXIT_NO_BASELINE
    return EXIT_OK
