"""tools/new_method.py: a scaffolded package works at once and passes the workspace integration suite.

The scaffolder runs on a throwaway copy of the workspace (root pyproject, packages/peft-core, tests/,
tools/), so the real workspace is never touched. The new package is built into a wheel (as the
hygiene check does) and that wheel's contents are put on PYTHONPATH, so its installed metadata
(the `peft.methods` entry point) is the real one from its pyproject. Then:

- its own tests pass, including peft-core's conformance kit on its declared cases (every check, the
  fresh-interpreter load through the wheel's entry point included);
- every check of `_workspace_checks.py` finds no problem with it (import cycles and orders, layering,
  deptry, dependency graph, registration, state dict, package files) and its wheel is clean;
- (`-m isolation`) it installs and passes its tests alone in a fresh venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import _workspace_checks as wc

ROOT = wc.REPO_ROOT
NAME = "scaffold_probe"
DIST = "peft-scaffold-probe"
IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.egg-info", "dist", "build")


def _copy_workspace(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(ROOT / "packages" / "peft-core", dest / "packages" / "peft-core", ignore=IGNORE)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=IGNORE)
    shutil.copytree(ROOT / "tools", dest / "tools", ignore=IGNORE)
    return dest


def _new_method(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "new_method.py"), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    root = _copy_workspace(tmp_path_factory.mktemp("scaffold") / "ws")
    proc = _new_method(root, NAME)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ws = wc.discover_workspace(root)
    pkg = ws.by_dist()[DIST]
    wheel, log = wc.build_wheel(pkg, root / "dist")
    assert wheel is not None, f"`uv build --package {DIST} --wheel` failed:\n{log[-3000:]}"
    site = root / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    pythonpath = [root / "packages" / "peft-core" / "src", site]
    return SimpleNamespace(root=root, ws=ws, pkg=pkg, wheel=wheel, pythonpath=pythonpath, stdout=proc.stdout)


def test_scaffolder_writes_a_complete_package(scaffolded):
    path = scaffolded.pkg.path
    expected = {
        "pyproject.toml", "README.md", "CHANGELOG.md", f"tests/test_{NAME}.py", "tests/test_conformance.py",
        *(f"src/peft_{NAME}/{f}" for f in ("__init__.py", "config.py", "layer.py", "model.py", "conformance.py", "py.typed")),
    }
    written = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert written == expected
    assert scaffolded.pkg.entry_points == {NAME: f"peft_{NAME}"}
    assert "| option | default | meaning |" in (path / "README.md").read_text()
    assert "## [Unreleased]" in (path / "CHANGELOG.md").read_text()
    assert f"created packages/{DIST}/" in scaffolded.stdout and "uv run pytest" in scaffolded.stdout
    # nothing outside the new folder changed
    assert sorted(p.name for p in (scaffolded.root / "packages").iterdir()) == ["peft-core", DIST]


def test_scaffolder_refuses_taken_and_invalid_names(scaffolded):
    again = _new_method(scaffolded.root, NAME)
    assert again.returncode == 1 and again.stderr.strip() == f"new_method.py: error: packages/{DIST} already exists"
    for bad in ("Bad", "two__underscores", "9lives", "trailing_", "has-dash"):
        proc = _new_method(scaffolded.root, bad)
        assert proc.returncode == 1 and "invalid method name" in proc.stderr, bad
    # a prefix overlapping an existing one (scaffold_probe_ vs scaffold_probe_x_) is refused
    proc = _new_method(scaffolded.root, NAME + "_x")
    assert proc.returncode == 1 and "overlaps" in proc.stderr


def test_scaffolded_package_passes_its_own_tests(scaffolded):
    env = wc.child_env(scaffolded.pythonpath)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(scaffolded.pkg.path / "tests"), "-v", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=600, env=env, cwd=scaffolded.root,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
    assert "test_fresh_interpreter PASSED" in proc.stdout and "test_merge[llama] PASSED" in proc.stdout


def test_scaffolded_package_passes_the_integration_checks(scaffolded):
    report = wc.run_checks_subprocess(
        scaffolded.root, list(wc.CHECKS), pythonpath=scaffolded.pythonpath, options={"registration": {"foreign": False}}
    )
    problems = [
        p for check in wc.CHECKS for p in report["problems"][check]
        if DIST in [d.strip() for d in p.package.split(",")] or p.package == "workspace"
    ]
    assert not problems, wc.format_problems(problems)
    # the probe really covered the new method (a skip would hide a broken state dict)
    assert DIST in report["packages"]
    assert not [p for p in report["problems"]["state_dicts"] if p.kind == "state-dict-skip"]
    assert not wc.check_wheel(scaffolded.pkg, scaffolded.wheel)


@pytest.mark.isolation
def test_scaffolded_package_alone_in_a_fresh_venv(scaffolded, tmp_path):
    core = scaffolded.ws.by_dist()[wc.CORE_DIST]
    core_wheel, log = wc.build_wheel(core, tmp_path / "core")
    assert core_wheel is not None, log[-3000:]
    wheels = {wc.CORE_DIST: core_wheel, DIST: scaffolded.wheel}
    problems, log = wc.isolated_run(scaffolded.ws, scaffolded.pkg, wheels, tmp_path / "iso")
    assert not problems, wc.format_problems(problems) + "\n" + log[-3000:]


def test_scaffolder_help():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "new_method.py"), "--help"], capture_output=True, text=True, timeout=60,
        env={**os.environ},
    )
    assert proc.returncode == 0 and "new_method.py" in proc.stdout and "NAME" in proc.stdout.upper()


def test_outside_refuses_a_folder_in_the_workspace_and_taken_names(scaffolded, tmp_path):
    """`--outside DIR` makes a project of its own: never inside the workspace, never a name the workspace's
    methods take, never over an existing folder (the full build-install-kit run is tests/test_outside_package.py)."""
    inside = _new_method(scaffolded.root, "elsewhere", "--outside", str(scaffolded.root / "sub"))
    assert inside.returncode == 1 and "inside the workspace" in inside.stderr
    assert not (scaffolded.root / "sub").exists()
    taken = _new_method(scaffolded.root, NAME + "_x", "--outside", str(tmp_path))
    assert taken.returncode == 1 and "overlaps" in taken.stderr
    made = _new_method(scaffolded.root, "elsewhere", "--outside", str(tmp_path), "--core-version", "2.3.1")
    assert made.returncode == 0, made.stderr
    pyproject = (tmp_path / "peft-elsewhere" / "pyproject.toml").read_text(encoding="utf-8")
    assert '"peft-core>=2.3,<3"' in pyproject and "workspace = true" not in pyproject
    again = _new_method(scaffolded.root, "elsewhere", "--outside", str(tmp_path))
    assert again.returncode == 1 and "already exists" in again.stderr
    core_without_outside = _new_method(scaffolded.root, "elsewhere2", "--core-version", "2.3.1")
    assert core_without_outside.returncode == 2 and "--core-version needs --outside" in core_without_outside.stderr
