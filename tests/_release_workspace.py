"""Throwaway git workspaces for the release tool's tests (tests/test_release_*.py).

``make_workspace`` builds a virtual uv root, a fake ``peft-core`` (trivial registry,
``PLUGIN_API_VERSION``, a ``peft_core.testing`` with the conformance kit's entry points ``load_suite``
/ ``run_conformance``) and a fake method package ``peft-foo`` declaring its cases (``peft.conformance``)
depending on ``peft-core>=0.1,<0.2``, all without third-party dependencies; ``release`` drives
``tools/release.py`` as a subprocess (``sys.executable tools/release.py ... --root <tmp>``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "tools" / "release.py"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Release Test",
    "GIT_AUTHOR_EMAIL": "release-test@example.invalid",
    "GIT_COMMITTER_NAME": "Release Test",
    "GIT_COMMITTER_EMAIL": "release-test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # no signing or hooks from the developer's config
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_ENV)
    env.pop("VIRTUAL_ENV", None)
    return env


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, env=_env(), text=True, capture_output=True)
    assert proc.returncode == 0, f"git {args}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE), *args, "--root", str(root)],
        cwd=root, env=_env(), text=True, capture_output=True,
    )


def plan_json(root: Path) -> tuple[int, dict]:
    proc = release(root, "plan", "--json")
    return proc.returncode, json.loads(proc.stdout)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


RELEASED_LOG = """
# Changelog

All notable changes to `{dist}` are documented here.

## [Unreleased]

## [0.1.0] - 2025-01-01

### Added
- Initial release.
"""

NEW_LOG = """
# Changelog

## [Unreleased]

### Added
- Initial release.
"""


def set_version(pkg_dir: Path, old: str, new: str) -> None:
    p = pkg_dir / "pyproject.toml"
    p.write_text(p.read_text().replace(f'version = "{old}"', f'version = "{new}"', 1))


def add_entry(pkg_dir: Path, section: str, text: str) -> None:
    p = pkg_dir / "CHANGELOG.md"
    p.write_text(p.read_text().replace("## [Unreleased]\n", f"## [Unreleased]\n\n### {section}\n- {text}\n", 1))


# A fake method's conformance declaration: `cases` is a list expression over `case(name, requires=(), **options)`.
CONFORMANCE = """
from types import SimpleNamespace


def case(name, requires=(), **options):
    return SimpleNamespace(name=name, model=SimpleNamespace(requires=tuple(requires)), options=options)


def conformance():
    return SimpleNamespace(method="{method}", cases={cases})
"""


def make_workspace(root: Path, *, released: bool = True, foo_range: str = "peft-core>=0.1,<0.2",
                   plugin_api: str = ">=1,<2") -> Path:
    """A committed workspace; with ``released`` both packages are at 0.1.0 and tagged."""
    write(root / "pyproject.toml", """
        [tool.uv.workspace]
        members = ["packages/*"]
    """)
    write(root / ".gitignore", "dist/\n__pycache__/\n")
    core = root / "packages" / "peft-core"
    write(core / "pyproject.toml", """
        [project]
        name = "peft-core"
        version = "0.1.0"
        description = "fake core"
        readme = "README.md"
        requires-python = ">=3.10"
        dependencies = []

        [build-system]
        requires = ["hatchling>=1.25"]
        build-backend = "hatchling.build"

        [tool.hatch.build.targets.wheel]
        packages = ["src/peft_core"]
    """)
    write(core / "README.md", "# peft-core (fake)\n")
    write(core / "CHANGELOG.md", (RELEASED_LOG if released else NEW_LOG).format(dist="peft-core"))
    write(core / "src/peft_core/__init__.py", """
        from peft_core._plugin_api import PLUGIN_API_VERSION

        _METHODS = {}


        class PeftMethod:
            def __init__(self, name, factory):
                self.name = name
                self.factory = factory
                self.module = factory.__module__.split(".")[0]


        def register_peft_method(name, factory, plugin_api=None):
            _METHODS[name] = PeftMethod(name, factory)


        def get_peft_method(name):
            return _METHODS[name]


        def get_method(name):
            return _METHODS[name].factory
    """)
    write(core / "src/peft_core/_plugin_api.py", "PLUGIN_API_VERSION = 1\n")
    write(core / "src/peft_core/testing.py", """
        # What the release probe uses of the real kit: load_suite(method) -> (suite, ref), suite.cases
        # (.name, .model.requires), run_conformance(method, cases=, hf=) -> report with .results.
        import importlib.metadata
        from types import SimpleNamespace

        import peft_core


        def load_suite(method):
            (ep,) = [e for e in importlib.metadata.entry_points(group="peft.conformance") if e.name == method]
            return ep.load()(), ep.value


        def run_conformance(method, cases=None, hf="auto", skip=()):
            suite, _ = load_suite(method)
            results = []
            for case in suite.cases:
                if cases is not None and case.name not in cases:
                    continue
                status, message = "passed", ""
                try:
                    out = peft_core.get_method(method)(**case.options)
                    if out != "tiny-model-with-" + method:
                        raise AssertionError(f"forward pass of {method} gave {out!r}")
                except Exception as exc:
                    status, message = "failed", f"{type(exc).__name__}: {exc}"
                results.append(SimpleNamespace(check="forward", case=case.name, status=status, message=message,
                                               label=f"forward[{case.name}]"))
            return SimpleNamespace(results=results)
    """)
    write(core / "src/peft_core/py.typed", "")
    write(core / "tests/test_core.py", """
        import peft_core


        def test_registry():
            peft_core.register_peft_method("x", lambda: 1)
            assert peft_core.get_method("x")() == 1
    """)

    foo = root / "packages" / "peft-foo"
    write(foo / "pyproject.toml", f"""
        [project]
        name = "peft-foo"
        version = "0.1.0"
        description = "fake method"
        readme = "README.md"
        requires-python = ">=3.10"
        dependencies = ["{foo_range}"]

        [project.entry-points."peft.methods"]
        foo = "peft_foo"

        [project.entry-points."peft.conformance"]
        foo = "peft_foo.conformance:conformance"

        [dependency-groups]
        dev = ["pytest>=8"]

        [build-system]
        requires = ["hatchling>=1.25"]
        build-backend = "hatchling.build"

        [tool.hatch.build.targets.wheel]
        packages = ["src/peft_foo"]

        [tool.uv.sources]
        peft-core = {{ workspace = true }}
    """)
    write(foo / "README.md", "# peft-foo (fake)\n")
    write(foo / "CHANGELOG.md", (RELEASED_LOG if released else NEW_LOG).format(dist="peft-foo"))
    write(foo / "src/peft_foo/__init__.py", f"""
        from peft_core import register_peft_method


        def make_model(**options):
            return "tiny-model-with-foo"


        register_peft_method("foo", make_model, plugin_api="{plugin_api}")
    """)
    write(foo / "src/peft_foo/conformance.py", CONFORMANCE.format(method="foo", cases='[case("default")]'))
    write(foo / "src/peft_foo/py.typed", "")
    write(foo / "tests/test_foo.py", """
        import peft_foo


        def test_make_model():
            assert peft_foo.make_model() == "tiny-model-with-foo"
    """)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    if released:
        git(root, "tag", "-a", "peft-core-v0.1.0", "-m", "peft-core 0.1.0")
        git(root, "tag", "-a", "peft-foo-v0.1.0", "-m", "peft-foo 0.1.0")
    return root


def commit_all(root: Path, msg: str = "change") -> None:
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", msg)


def by_name(data: dict) -> dict[str, dict]:
    return {p["name"]: p for p in data["packages"]}
