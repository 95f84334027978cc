"""`tools/release.py build` (verification in a fresh venv by package kind, the stamp), `tag`'s refusal
of unverified builds, and `publish`'s checks, on throwaway workspaces (see _release_workspace.py).

The fake packages have no third-party dependencies, so every venv here is a few files, but each
test builds and verifies several times (a minute or two in all), so they run with the release job
(`uv run pytest -m release tests`, which .ci/run runs) next to test_release_index.py, which releases
the real packages through a real index. test_release_tool.py (default suite) keeps a build and the
refused tag.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from _release_workspace import CONFORMANCE, add_entry, commit_all, git, make_workspace, release, set_version, write

pytestmark = pytest.mark.release


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def wheel_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as zf:
        return set(zf.namelist())


def stamp_of(root: Path, dist: str) -> dict:
    return json.loads((root / "dist" / dist / "verified.json").read_text())


def add_package(root: Path, dist: str, *, deps: list[str], body: str, extra_toml: str = "",
                module: str | None = None) -> Path:
    """A further workspace member ``dist`` (import name from the dist), depending on ``deps``."""
    module = module or dist.replace("-", "_")
    pkg = root / "packages" / dist
    sources = "".join(f"{d.split('>')[0].split('=')[0]} = {{ workspace = true }}\n" for d in deps)
    deps_toml = ", ".join(f'"{d}"' for d in deps)
    (pkg / "src" / module).mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "0.1.0"\ndescription = "fake"\nreadme = "README.md"\n'
        f'requires-python = ">=3.10"\ndependencies = [{deps_toml}]\n\n{extra_toml}\n'
        '[build-system]\nrequires = ["hatchling>=1.25"]\nbuild-backend = "hatchling.build"\n\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/{module}"]\n\n[tool.uv.sources]\n{sources}'
    )
    (pkg / "README.md").write_text(f"# {dist}\n")
    (pkg / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n\n### Added\n- Initial release.\n")
    write(pkg / "src" / module / "__init__.py", body)
    return pkg


# ---------------------------------------------------------------- method packages


def test_build_method_package_verifies_and_stamps(ws: Path) -> None:
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dist = ws / "dist/peft-foo"
    wheel = dist / "peft_foo-0.1.0-py3-none-any.whl"
    assert wheel.is_file() and (dist / "peft_foo-0.1.0.tar.gz").is_file()
    names = wheel_names(wheel)
    assert {"peft_foo/__init__.py", "peft_foo/py.typed"} <= names
    assert {n.split("/")[0] for n in names} == {"peft_foo", "peft_foo-0.1.0.dist-info"}
    assert "installed peft-core 0.1.0, peft-foo 0.1.0 (wheels) with declared dependencies only" in proc.stdout
    assert "entry point foo: loaded, registered" in proc.stdout
    assert "conformance case foo/default: passed" in proc.stdout
    # the members it was verified with are built in a temp dir, not into their own dist/ folders
    assert not (ws / "dist/peft-core").exists()
    stamp = stamp_of(ws, "peft-foo")
    assert stamp["commit"] == git(ws, "rev-parse", "HEAD").strip() and stamp["dirty"] == []
    assert stamp["version"] == "0.1.0"
    assert set(stamp["files"]) == {wheel.name, "peft_foo-0.1.0.tar.gz"}
    assert stamp["verified_with"]["peft-core"]["file"] == "peft_core-0.1.0-py3-none-any.whl"
    assert stamp["cases"] == [{"dist": "peft-foo", "method": "foo", "id": "default", "status": "passed"}]


def test_build_runs_the_conformance_cases_a_method_declares(ws: Path, tmp_path: Path) -> None:
    # a third-party module only one case's tiny model needs, as a local wheel named in the dev group
    extra = tmp_path / "extra"
    write(extra / "pyproject.toml", """
        [project]
        name = "fake-extra"
        version = "1.0"
        [build-system]
        requires = ["hatchling>=1.25"]
        build-backend = "hatchling.build"
        [tool.hatch.build.targets.wheel]
        packages = ["fake_extra"]
    """)
    write(extra / "fake_extra/__init__.py", "VALUE = 'extra'\n")
    foo = ws / "packages/peft-foo"
    write(foo / "src/peft_foo/conformance.py", CONFORMANCE.format(
        method="foo", cases='[case("plain", scale=2), case("with-extra", requires=["fake_extra"], probe=True)]'))
    init = foo / "src/peft_foo/__init__.py"
    init.write_text(init.read_text().replace(
        'def make_model(**options):\n    return "tiny-model-with-foo"',
        'def make_model(**options):\n'
        '    if options.get("probe"):\n        import fake_extra\n\n        assert fake_extra.VALUE == "extra"\n'
        '    elif options != {"scale": 2}:\n        raise AssertionError(f"unexpected options {options}")\n'
        '    return "tiny-model-with-foo"'))
    pp = foo / "pyproject.toml"
    pp.write_text(pp.read_text().replace('dev = ["pytest>=8"]', f'dev = ["pytest>=8", "fake-extra @ {extra.as_uri()}"]'))
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conformance case foo/plain: passed (1 passed checks" in proc.stdout
    # run only after the declared dependencies alone were checked, then the module it needs installed
    # (a bare module name takes the package's dev-group requirement)
    assert f"installed for the checks: fake-extra @ {extra.as_uri()}" in proc.stdout
    assert "conformance case foo/with-extra (needs fake_extra): passed" in proc.stdout
    assert [c["status"] for c in stamp_of(ws, "peft-foo")["cases"]] == ["passed", "passed"]


def test_build_fails_when_a_conformance_check_fails_and_leaves_no_stamp(ws: Path) -> None:
    assert release(ws, "build", "peft-foo").returncode == 0
    assert (ws / "dist/peft-foo/verified.json").is_file()
    src = ws / "packages/peft-foo/src/peft_foo/__init__.py"
    src.write_text(src.read_text().replace('"tiny-model-with-foo"', '"broken"'))
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 1
    assert "conformance check forward[default] of 'foo' failed" in proc.stdout
    assert "forward pass of foo gave 'broken'" in proc.stdout
    assert "conformance case foo/default: FAILED" in proc.stdout
    assert not (ws / "dist/peft-foo/verified.json").exists()  # the old stamp is gone too


def test_build_fails_for_a_method_without_conformance_cases(ws: Path) -> None:
    pp = ws / "packages/peft-foo/pyproject.toml"
    pp.write_text(pp.read_text().replace('[project.entry-points."peft.conformance"]\nfoo = "peft_foo.conformance:conformance"\n', ""))
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 1
    assert "method 'foo' of peft-foo declares no conformance cases" in proc.stdout
    assert '[project.entry-points."peft.conformance"]' in proc.stdout
    assert not (ws / "dist/peft-foo/verified.json").exists()


def test_build_fails_when_an_import_is_undeclared(ws: Path) -> None:
    # what the numpy bug looked like: the workspace venv has the module, a fresh venv does not
    src = ws / "packages/peft-foo/src/peft_foo/__init__.py"
    src.write_text("import packaging_not_declared_anywhere\n" + src.read_text())
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 1
    assert "import peft_foo failed" in proc.stdout and "packaging_not_declared_anywhere" in proc.stdout


def test_build_fails_on_stray_files_in_wheel(ws: Path) -> None:
    foo = ws / "packages/peft-foo"
    write(foo / "src/stray/__init__.py", "")
    pp = foo / "pyproject.toml"
    pp.write_text(pp.read_text().replace('packages = ["src/peft_foo"]', 'packages = ["src/peft_foo", "src/stray"]'))
    proc = release(ws, "build", "peft-foo", "--no-verify")
    assert proc.returncode == 1
    assert "outside peft_foo/" in proc.stdout and "stray/__init__.py" in proc.stdout


def test_build_fails_when_workspace_core_outside_range(ws: Path) -> None:
    set_version(ws / "packages/peft-core", "0.1.0", "0.2.0")
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 1
    assert "into a fresh venv failed" in proc.stdout and "does not admit the workspace's peft-core" in proc.stdout


# ---------------------------------------------------------------- other kinds


def test_build_core_runs_the_cases_of_the_members_it_names(ws: Path) -> None:
    pp = ws / "packages/peft-core/pyproject.toml"
    pp.write_text(pp.read_text() + '\n[tool.peft-release.verify]\nwith-members = ["peft-foo"]\n')
    proc = release(ws, "build", "peft-core")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = wheel_names(ws / "dist/peft-core/peft_core-0.1.0-py3-none-any.whl")
    assert {n.split("/")[0] for n in names} == {"peft_core", "peft_core-0.1.0.dist-info"}
    assert "installed peft-core 0.1.0 (wheels) with declared dependencies only" in proc.stdout
    assert "installed for the checks: peft-foo (wheels)" in proc.stdout
    assert "[peft-foo] conformance case foo/default: passed" in proc.stdout
    assert stamp_of(ws, "peft-core")["verified_with"]["peft-foo"]["file"] == "peft_foo-0.1.0-py3-none-any.whl"


def test_build_dependent_method_gets_its_members_fresh_wheels(ws: Path) -> None:
    # like peft-adalora -> peft-lora: peft-bar needs peft-foo, which is not on any index
    bar = add_package(ws, "peft-bar", deps=["peft-core>=0.1,<0.2", "peft-foo>=0.1,<0.2"],
                      extra_toml='[project.entry-points."peft.methods"]\nbar = "peft_bar"\n\n'
                                 '[project.entry-points."peft.conformance"]\nbar = "peft_bar.conformance:conformance"\n',
                      body="""
        import peft_foo
        from peft_core import register_peft_method


        def make_model(**options):
            return peft_foo.make_model().replace("foo", "bar")


        register_peft_method("bar", make_model, plugin_api=">=1,<2")
    """)
    write(bar / "src/peft_bar/conformance.py", CONFORMANCE.format(method="bar", cases='[case("default")]'))
    commit_all(ws, "add peft-bar")
    proc = release(ws, "build", "peft-bar")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installed peft-bar 0.1.0, peft-core 0.1.0, peft-foo 0.1.0 (wheels)" in proc.stdout
    assert "conformance case bar/default: passed" in proc.stdout
    assert set(stamp_of(ws, "peft-bar")["verified_with"]) == {"peft-core", "peft-foo"}


def test_build_app_runs_its_declared_commands(ws: Path) -> None:
    script = "import sys, peft_core\n\ndef main():\n    print('tool ok', peft_core.PLUGIN_API_VERSION)\n    sys.exit(0)\n"
    verify = ('[project.scripts]\nfoo-tool = "peft_tool:main"\n\n[tool.peft-release.verify]\n'
              'with-members = ["peft-foo"]\ncommands = ["foo-tool", "python -c \\"import peft_foo\\"", '
              '"python -c \\"import pathlib; pathlib.Path(\'{tmp}/made\').write_text(\'x\')\\""]\n')
    add_package(ws, "peft-tool", deps=["peft-core>=0.1,<0.2"], body=script, extra_toml=verify)
    commit_all(ws, "add a tool")
    proc = release(ws, "build", "peft-tool")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== peft-tool 0.1.0 (app)" in proc.stdout and "$ foo-tool: ok" in proc.stdout
    assert "[peft-foo] conformance case foo/default: passed" in proc.stdout  # members' cases run too

    pp = ws / "packages/peft-tool/pyproject.toml"
    pp.write_text(pp.read_text().replace('"foo-tool"', '"foo-tool", "false"'))
    proc = release(ws, "build", "peft-tool")
    assert proc.returncode == 1
    assert "command `false` exited 1" in proc.stdout


def test_build_refuses_a_package_it_cannot_check(ws: Path) -> None:
    add_package(ws, "peft-thing", deps=["peft-core>=0.1,<0.2"], body="import peft_core\n")
    proc = release(ws, "build", "peft-thing")
    assert proc.returncode == 1
    assert "no [project.entry-points.\"peft.methods\"]" in proc.stdout
    assert "[tool.peft-release.verify] commands" in proc.stdout


def test_build_all_verifies_every_package_in_parallel(ws: Path) -> None:
    proc = release(ws, "build", "--all", "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "build: 2 of 2 packages verified" in proc.stdout
    for dist in ("peft-core", "peft-foo"):
        assert stamp_of(ws, dist)["dirty"] == []
    src = ws / "packages/peft-foo/src/peft_foo/__init__.py"
    src.write_text(src.read_text().replace('"tiny-model-with-foo"', '"broken"'))
    proc = release(ws, "build", "--all")
    assert proc.returncode == 1
    assert "1 of 2 packages verified" in proc.stdout and "FAILED peft-foo" in proc.stdout


# ---------------------------------------------------------------- tag and publish need a verified build


def _ready_to_tag(ws: Path) -> None:
    add_entry(ws / "packages/peft-foo", "Fixed", "A bug.")
    assert release(ws, "bump", "peft-foo", "patch", "--date", "2025-07-01").returncode == 0
    commit_all(ws, "Release peft-foo 0.1.1")


def test_tag_refuses_without_a_verified_build_of_head(ws: Path) -> None:
    _ready_to_tag(ws)
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 1 and "no verified build" in proc.stderr and "build peft-foo" in proc.stderr
    # (a failed verification leaves no stamp: test_build_fails_when_a_conformance_check_fails_and_leaves_no_stamp)

    # files changed after verification
    assert release(ws, "build", "peft-foo").returncode == 0
    wheel = ws / "dist/peft-foo/peft_foo-0.1.1-py3-none-any.whl"
    good = wheel.read_bytes()
    wheel.write_bytes(good + b"\0")
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 1 and "changed since it was verified" in proc.stderr
    wheel.write_bytes(good)

    # verified at another commit
    (ws / "packages/peft-foo/README.md").write_text("# peft-foo, new words\n")
    commit_all(ws, "docs")
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 1 and "was verified at commit" in proc.stderr

    # built from a dirty tree (clean again when tagging)
    (ws / "scratch.txt").write_text("x")
    proc = release(ws, "build", "peft-foo")
    assert proc.returncode == 0 and "`tag` will refuse this build" in proc.stdout
    (ws / "scratch.txt").unlink()
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 1 and "dirty working tree" in proc.stderr and "scratch.txt" in proc.stderr

    assert "peft-foo-v0.1.1" not in git(ws, "tag", "--list").split()
    assert release(ws, "build", "peft-foo").returncode == 0
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 0, proc.stderr
    message = git(ws, "tag", "-l", "--format=%(contents)", "peft-foo-v0.1.1")
    assert "A bug." in message and "peft_foo-0.1.1-py3-none-any.whl  sha256:" in message


def test_publish_needs_the_tag_and_the_verified_files(ws: Path) -> None:
    _ready_to_tag(ws)
    assert release(ws, "build", "peft-foo").returncode == 0
    proc = release(ws, "publish", "peft-foo", "--dry-run")
    assert proc.returncode == 1 and "there is no tag peft-foo-v0.1.1" in proc.stderr
    assert release(ws, "tag", "peft-foo").returncode == 0
    proc = release(ws, "publish", "peft-foo", "--dry-run", "--publish-url", "http://127.0.0.1:9/")
    assert proc.returncode == 0, proc.stderr
    assert "uv publish --publish-url http://127.0.0.1:9/" in proc.stdout
    assert "peft_foo-0.1.1-py3-none-any.whl" in proc.stdout and "peft_foo-0.1.1.tar.gz" in proc.stdout
    sdist = ws / "dist/peft-foo/peft_foo-0.1.1.tar.gz"
    sdist.unlink()
    proc = release(ws, "publish", "peft-foo", "--dry-run")
    assert proc.returncode == 1 and "peft_foo-0.1.1.tar.gz is missing" in proc.stderr


def test_lowest_core_gives_a_dependent_method_its_members_wheels(ws: Path) -> None:
    # peft-bar needs peft-foo (like peft-adalora -> peft-lora), which no index has
    bar = add_package(ws, "peft-bar", deps=["peft-core>=0.1,<0.2", "peft-foo>=0.1,<0.2"],
                      extra_toml='[project.entry-points."peft.methods"]\nbar = "peft_bar"\n\n'
                                 '[dependency-groups]\ndev = ["pytest>=8"]\n',
                      body="import peft_foo\n\nNAME = 'bar'\n")
    write(bar / "tests/test_bar.py", "import peft_bar\n\n\ndef test_bar():\n    assert peft_bar.peft_foo.make_model()\n")
    commit_all(ws, "add peft-bar")
    proc = release(ws, "lowest-core", "peft-bar")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests passed against peft-core 0.1.0 (tag peft-core-v0.1.0)" in proc.stdout
