"""peft-compat, which is not a workspace member (its import name `peft` is Hugging Face PEFT's, installed in
the root venv): its files follow the package rules, its environment is the root lock's, and its tests pass
there (`-m compat_env`, run by .ci/run).

Default suite: the file checks. Marked `compat_env`: build the environment (tests/_compat_env.py, from the
warm uv cache ~20 s) and run packages/peft-compat/tests in it; the transformers adapter-method flows run in
the same environment afterwards, with transformers swapped for the newest release that accepts Hugging Face PEFT's
0.21.2 API level.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time

import pytest

import _compat_env as ce
import _workspace_checks as wc

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

# Deliberate differences from a workspace member: the import package is `peft` (the point of the package)
# and peft-core is not a workspace source (peft-compat is not a member; its environment installs the
# workspace's peft-core from the lock's editable entry).
EXPECTED_DIFFERENCES = {"import-package", "no-workspace-source"}
MIXIN_TESTS = "test_transformers_adapter_mixin.py"


def _compat_package() -> wc.Package:
    data = tomllib.loads((ce.COMPAT_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    return wc.Package(root=wc.REPO_ROOT, path=ce.COMPAT_DIR.resolve(), pyproject=data)


def test_peft_compat_is_excluded_and_follows_the_package_rules(workspace):
    assert ce.COMPAT_DIR.resolve() in wc.excluded_packages(wc.REPO_ROOT)
    compat = _compat_package()
    assert compat.import_names == ["peft"]
    ws = wc.Workspace(root=workspace.root, packages=[*workspace.packages, compat])
    problems = [p for p in wc.check_package_files(ws) if p.package == "peft-compat" and p.kind not in EXPECTED_DIFFERENCES]
    assert not problems, wc.format_problems(problems)


def test_dev_group_matches_the_locked_group():
    """peft-compat's dev group (what it declares) and the root group its environment is built from agree."""
    root = tomllib.loads((wc.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    locked = {wc.normalize(wc._requirement(r).name) for r in root["dependency-groups"][ce.GROUP]}
    declared = {wc.normalize(wc._requirement(r).name) for r in _compat_package().dependency_group("dev")}
    assert declared == locked


def test_source_imports_only_core_and_methods():
    """No PEFT logic lives in peft-compat: its modules import peft-core, its own modules, the standard library,
    and transformers (only to wrap names in its classes); method packages are reached through the registry."""
    allowed_roots = {"peft", "_peft_compat_metadata", "peft_core", "transformers", "torch", "__future__"} | set(sys.stdlib_module_names)
    found: dict[str, set[str]] = {}
    for path in sorted((ce.COMPAT_DIR / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in allowed_roots:
                    found.setdefault(path.name, set()).add(name)
    assert not found, found


@pytest.fixture(scope="module")
def compat_venv(tmp_path_factory):
    log: list[str] = []
    started = time.monotonic()
    venv = tmp_path_factory.mktemp("peft-compat-env") / "venv"
    ce.build(venv, log=log)
    print(f"peft-compat environment built in {time.monotonic() - started:.1f} s")
    return venv


def _run_tests(venv, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ce.pytest_command(venv, "-q", "-rfEs", *args)
    return subprocess.run(cmd, capture_output=True, text=True, env=ce.test_environment(), cwd=wc.REPO_ROOT, timeout=3000)


def _summary(proc: subprocess.CompletedProcess[str]) -> str:
    return f"rc={proc.returncode}\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.compat_env
def test_peft_compat_tests_pass_in_their_environment(compat_venv):
    proc = _run_tests(compat_venv, str(ce.COMPAT_DIR / "tests"),
                      "--ignore", str(ce.COMPAT_DIR / "tests" / MIXIN_TESTS))
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, _summary(proc)
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, _summary(proc)


# Defined last: it swaps transformers in the module's one environment (instead of building a second one).
@pytest.mark.compat_env
def test_transformers_adapter_methods_with_newest_transformers_accepting_api_0_21_2(compat_venv):
    ce.swap_in(compat_venv, [ce.ADAPTER_MIXIN_TRANSFORMERS])
    proc = _run_tests(compat_venv, str(ce.COMPAT_DIR / "tests" / MIXIN_TESTS))
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, _summary(proc)
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, _summary(proc)
