"""docs/publish-a-method.md, followed step by step: a method package made outside the workspace works
next to a built peft-core wheel (`uv run pytest -m isolation tests`, run by .ci/run).

1. `tools/new_method.py NAME --outside DIR` writes a project of its own in a temp folder outside the
   workspace: a version range on peft-core, no `[tool.uv.sources]`, both entry points;
2. `uv build` builds its wheel there (no workspace in sight) and peft-core's wheel is built from the workspace;
3. a fresh venv (uv, warm cache) gets both wheels, their declared dependencies and transformers (for the tiny
   Llama case), and nothing from the workspace;
4. there `python -I -m peft_core.testing NAME` runs every check of the kit on every declared case and passes
   (the Hugging Face comparison is skipped: the method has no counterpart there), and the package's own tests
   pass with the dev group installed from its pyproject (`uv pip install --group dev`, as the page says);
5. the same steps on a copy whose merge is wrong make the kit exit 1 and blame `merge`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import _workspace_checks as wc

TOOLS = wc.REPO_ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from release_lib.proc import run, uv  # noqa: E402
from release_lib.venvs import installed, make_venv, pip_install  # noqa: E402

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

pytestmark = pytest.mark.isolation

CORE_VERSION = wc.discover_workspace(wc.REPO_ROOT).by_dist()[wc.CORE_DIST].version
NAME = "outside_probe"
DIST = "peft-outside-probe"
IMPORT = "peft_outside_probe"


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """The scaffolded project, both wheels, and a fresh venv holding them (see the module docstring)."""
    tmp = tmp_path_factory.mktemp("outside")
    assert not tmp.resolve().is_relative_to(wc.REPO_ROOT), "the temp folder must be outside the workspace"
    proc = run([sys.executable, str(TOOLS / "new_method.py"), NAME, "--outside", str(tmp / "src")], tmp, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    project = tmp / "src" / DIST
    wheels = tmp / "wheels"
    uv(project, "build", "--wheel", "-o", str(wheels))
    core = wc.discover_workspace(wc.REPO_ROOT).by_dist()[wc.CORE_DIST]
    core_wheel, log = wc.build_wheel(core, wheels)
    assert core_wheel is not None, log[-3000:]
    method_wheel = next(wheels.glob(f"{IMPORT}-*.whl"))
    py = make_venv(tmp, tmp / "venv", sys.executable)
    proc = pip_install(py, tmp, [str(core_wheel), str(method_wheel), *_dev_group(project, "transformers")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp, project, py


def _dev_group(project: Path, name: str) -> list[str]:
    """The requirement for `name` as the project's dev group writes it."""
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return [r for r in data["dependency-groups"]["dev"] if r.split(">")[0].split("=")[0].strip() == name]


def test_scaffolded_project_stands_alone(outside):
    _, project, _ = outside
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert "uv" not in data.get("tool", {}), "an outside package must not name a workspace source"
    major, minor = (int(part) for part in CORE_VERSION.split(".")[:2])
    core_range = f"peft-core>=0.{minor},<0.{minor + 1}" if major == 0 else f"peft-core>={major}.{minor},<{major + 1}"
    assert core_range in data["project"]["dependencies"]  # a normal range on the release it was made against
    assert data["project"]["entry-points"] == {
        "peft.methods": {NAME: IMPORT},
        "peft.conformance": {NAME: f"{IMPORT}.conformance:conformance"},
    }
    assert "(../peft-core)" not in (project / "README.md").read_text(encoding="utf-8")  # no link into a workspace
    assert (project / "src" / IMPORT / "py.typed").is_file() and (project / "CHANGELOG.md").is_file()


def test_installed_next_to_the_core_wheel_only(outside):
    tmp, _, py = outside
    have = installed(py, tmp)
    assert have.get("peft-core") == CORE_VERSION and have.get(DIST) == "0.1.0"
    assert not [d for d in have if d.startswith("peft-") and d not in ("peft-core", DIST)]
    probe = (
        "import json, peft_core, " + IMPORT + "; "
        "print(json.dumps([peft_core.__file__, " + IMPORT + ".__file__, "
        "[m.__dict__ for m in peft_core.installed_methods()]]))"
    )
    core_file, method_file, methods = json.loads(run([str(py), "-I", "-c", probe], tmp).stdout)
    venv = str(py.parent.parent)
    assert core_file.startswith(venv) and method_file.startswith(venv)
    assert methods == [{"name": NAME, "distribution": DIST, "version": "0.1.0", "entry_point": IMPORT, "registered": True}]


def test_the_kit_passes_on_the_installed_package(outside):
    tmp, _, py = outside
    proc = run([str(py), "-I", "-m", "peft_core.testing", NAME, "--json"], tmp, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    (report,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["method"] == NAME and report["ok"]
    ran = {(r["check"], r["case"]): r["status"] for r in report["results"]}
    skipped = {key for key, status in ran.items() if status == "skipped"}
    # only the Hugging Face comparison is skipped (no counterpart there); the Llama case ran (transformers is installed)
    assert skipped == {("hf_files", "mlp"), ("hf_files", "llama")}, report["results"]
    assert ran[("fresh_interpreter", None)] == "passed"  # a new interpreter found the package by its entry point
    assert ran[("save_load", "llama")] == ran[("merge", "llama")] == "passed"


def test_the_packages_own_tests_pass_with_its_dev_group(outside):
    tmp, project, py = outside
    proc = pip_install(py, project, ["--group", "dev"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the method's own test, and the kit's pytest front end collecting every check (run in full above)
    tests = [str(project / "tests" / f"test_{NAME}.py")]
    proc = run([str(py), "-I", "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"], project, check=False)
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    collect = [str(py), "-I", "-m", "pytest", str(project / "tests" / "test_conformance.py"), "--collect-only", "-q",
               "-p", "no:cacheprovider"]
    proc = run(collect, project, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "test_fresh_interpreter" in proc.stdout and "test_merge[llama]" in proc.stdout


def test_the_kit_fails_the_same_package_with_a_wrong_merge(outside, tmp_path):
    """The same steps on a copy whose merge adds twice the update: the kit run exits non-zero and blames merging
    (the forward, save/load and the rest still pass), so the passing run above is not vacuous."""
    tmp, project, _ = outside
    broken = tmp_path / DIST
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns(".venv", "dist", "__pycache__"))
    layer = broken / "src" / IMPORT / "layer.py"
    source = layer.read_text(encoding="utf-8")
    right = f"return (b @ a) * self.{NAME}_scaling[adapter_name]"
    assert right in source, "the scaffolded get_delta_weight changed: update this mutation"
    layer.write_text(source.replace(right, f"return 2 * (b @ a) * self.{NAME}_scaling[adapter_name]"), encoding="utf-8")
    wheels = tmp_path / "wheels"
    uv(broken, "build", "--wheel", "-o", str(wheels))
    core_wheel = next((tmp / "wheels").glob("peft_core-*.whl"))
    py = make_venv(tmp_path, tmp_path / "venv", sys.executable)
    proc = pip_install(py, tmp_path, [str(core_wheel), str(next(wheels.glob(f"{IMPORT}-*.whl")))])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run([str(py), "-I", "-m", "peft_core.testing", NAME, "--json", "--no-hf"], tmp_path, check=False)
    assert proc.returncode == 1, proc.stdout[-6000:] + proc.stderr[-3000:]
    (report,) = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = {r["check"] for r in report["results"] if r["status"] == "failed"}
    passed = {r["check"] for r in report["results"] if r["status"] == "passed"}
    assert not report["ok"] and "merge" in failed, report["results"]
    assert {"changes_output", "disable_adapter", "save_load", "fresh_interpreter"} <= passed, report["results"]
