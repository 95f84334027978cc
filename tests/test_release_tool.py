"""End-to-end tests of tools/release.py on small throwaway git workspaces (see _release_workspace.py):
plan, bump, tag (refused without a verified build), build and lowest-core. Verification by
package kind, stamps and publishing: test_release_verify.py; releasing through a real index:
test_release_index.py (both in the release job, -m release).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from _release_workspace import (
    REPO,
    RELEASE,
    _env,
    add_entry,
    by_name,
    commit_all,
    git,
    make_workspace,
    plan_json,
    release,
    set_version,
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


# ---------------------------------------------------------------- plan


def test_plan_released_workspace_is_up_to_date(ws: Path) -> None:
    rc, data = plan_json(ws)
    assert rc == 0, data
    pkgs = by_name(data)
    assert set(pkgs) == {"peft-core", "peft-foo"}  # discovered from the filesystem
    for name in pkgs:
        assert pkgs[name]["last_tag"] == f"{name}-v0.1.0"
        assert pkgs[name]["changed"] is False
        assert pkgs[name]["state"] == "up to date"
    assert pkgs["peft-foo"]["core_in_range"] is True
    assert (pkgs["peft-core"]["kind"], pkgs["peft-foo"]["kind"]) == ("core", "method")  # how build verifies them
    assert data["plugin_api_version"] == 1
    text = release(ws, "plan")
    assert text.returncode == 0
    assert "peft-foo" in text.stdout and "up to date" in text.stdout and "OK: no problems" in text.stdout


def test_plan_never_tagged_packages_are_first_releases(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", released=False)
    # an empty Unreleased on a never-tagged package is fine too
    log = root / "packages/peft-foo/CHANGELOG.md"
    log.write_text("# Changelog\n\n## [Unreleased]\n")
    commit_all(root)
    rc, data = plan_json(root)
    assert rc == 0, data["problems"]
    pkgs = by_name(data)
    assert pkgs["peft-core"]["state"] == "never released"
    assert pkgs["peft-core"]["bump"] == "current" and pkgs["peft-core"]["next_version"] == "0.1.0"
    assert pkgs["peft-core"]["last_tag"] is None and pkgs["peft-core"]["changed"] is True
    assert pkgs["peft-foo"]["unreleased"] == []


def test_plan_fails_when_code_changed_without_entry(ws: Path) -> None:
    src = ws / "packages/peft-foo/src/peft_foo/__init__.py"
    src.write_text(src.read_text() + "\nEXTRA = 1\n")
    commit_all(ws)
    proc = release(ws, "plan")
    assert proc.returncode == 1
    assert "peft-foo" in proc.stdout
    assert "changed since peft-foo-v0.1.0" in proc.stdout
    assert "packages/peft-foo/src/peft_foo/__init__.py" in proc.stdout
    assert "CHANGELOG.md" in proc.stdout and "Unreleased" in proc.stdout  # how to fix
    rc, data = plan_json(ws)
    assert rc == 1
    assert [p["package"] for p in data["problems"]] == ["peft-foo"]
    assert by_name(data)["peft-core"]["state"] == "up to date"  # other packages unaffected


def test_plan_sees_uncommitted_and_untracked_changes(ws: Path) -> None:
    (ws / "packages/peft-foo/src/peft_foo/new.py").write_text("X = 1\n")
    rc, data = plan_json(ws)
    assert rc == 1
    assert by_name(data)["peft-foo"]["changed_files"] == ["packages/peft-foo/src/peft_foo/new.py"]


def test_plan_changelog_only_edit_is_not_a_code_change(ws: Path) -> None:
    log = ws / "packages/peft-foo/CHANGELOG.md"
    log.write_text(log.read_text().replace("Initial release.", "Initial release (typo fixed)."))
    commit_all(ws)
    rc, data = plan_json(ws)
    assert rc == 0
    assert by_name(data)["peft-foo"]["changed"] is False


@pytest.mark.parametrize(
    ("section", "text", "bump", "next_version"),
    [
        ("Fixed", "A fix.", "patch", "0.1.1"),
        ("Security", "A CVE fix.", "patch", "0.1.1"),
        ("Added", "A feature.", "minor", "0.2.0"),
        ("Deprecated", "Old thing.", "minor", "0.2.0"),
        ("Removed", "Old thing.", "minor", "0.2.0"),  # breaking, but 0.x: minor
        ("Fixed", "BREAKING: fixed the signature.", "minor", "0.2.0"),
    ],
)
def test_plan_bump_from_entries(ws: Path, section: str, text: str, bump: str, next_version: str) -> None:
    src = ws / "packages/peft-foo/src/peft_foo/__init__.py"
    src.write_text(src.read_text() + "\n# changed\n")
    add_entry(ws / "packages/peft-foo", section, text)
    commit_all(ws)
    rc, data = plan_json(ws)
    assert rc == 0, data["problems"]
    foo = by_name(data)["peft-foo"]
    assert foo["state"] == "needs release"
    assert (foo["bump"], foo["next_version"]) == (bump, next_version)
    assert foo["unreleased"][0]["section"] == section


def test_plan_breaking_change_after_1_0_is_major(ws: Path) -> None:
    foo = ws / "packages/peft-foo"
    set_version(foo, "0.1.0", "1.2.3")
    commit_all(ws)
    git(ws, "tag", "-a", "peft-foo-v1.2.3", "-m", "peft-foo 1.2.3")
    add_entry(foo, "Removed", "The old API.")
    rc, data = plan_json(ws)
    assert rc == 0
    p = by_name(data)["peft-foo"]
    assert p["last_tag"] == "peft-foo-v1.2.3"  # latest by version
    assert (p["bump"], p["next_version"]) == ("major", "2.0.0")


def test_plan_fails_when_core_outside_method_range(ws: Path) -> None:
    core = ws / "packages/peft-core"
    set_version(core, "0.1.0", "0.2.0")
    add_entry(core, "Added", "Something.")
    rc, data = plan_json(ws)
    assert rc == 1
    assert [p["package"] for p in data["problems"]] == ["peft-foo"]
    msg = data["problems"][0]["message"]
    assert "peft-core>=0.1,<0.2" in msg or "peft-core<0.2,>=0.1" in msg
    assert "0.2.0" in msg and "packages/peft-foo/pyproject.toml" in msg
    assert "peft-core>=0.1,<0.3" in msg  # suggested range
    assert by_name(data)["peft-foo"]["core_in_range"] is False


def test_plan_fails_when_plugin_api_not_admitted(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", plugin_api=">=2,<3")
    proc = release(root, "plan")
    assert proc.returncode == 1
    assert 'plugin_api=">=2,<3"' in proc.stdout and "PLUGIN_API_VERSION = 1" in proc.stdout
    rc, data = plan_json(root)
    assert by_name(data)["peft-foo"]["plugin_api"][0]["spec"] == ">=2,<3"


def test_plan_non_literal_plugin_api_is_only_a_warning(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws")
    src = root / "packages/peft-foo/src/peft_foo/__init__.py"
    src.write_text(src.read_text().replace('plugin_api=">=1,<2"', "plugin_api=RANGE").replace(
        "def make_model", 'RANGE = ">=1,<2"\n\n\ndef make_model'))
    add_entry(root / "packages/peft-foo", "Changed", "Range in a constant.")
    rc, data = plan_json(root)
    assert rc == 0, data["problems"]
    assert any("not a string literal" in w["message"] for w in data["warnings"])


def test_plan_missing_changelog_is_a_problem(ws: Path) -> None:
    (ws / "packages/peft-foo/CHANGELOG.md").unlink()
    proc = release(ws, "plan")
    assert proc.returncode == 1
    assert "packages/peft-foo has no CHANGELOG.md" in proc.stdout


# ---------------------------------------------------------------- bump


def test_bump_moves_entries_and_bumps_only_that_package(ws: Path) -> None:
    foo = ws / "packages/peft-foo"
    add_entry(foo, "Added", "The foo method can now be merged.")
    add_entry(foo, "Fixed", "A crash.")
    commit_all(ws)
    proc = release(ws, "bump", "peft-foo", "minor", "--date", "2025-06-01")
    assert proc.returncode == 0, proc.stderr
    assert "0.1.0 -> 0.2.0" in proc.stdout
    assert 'version = "0.2.0"' in (foo / "pyproject.toml").read_text()
    assert 'version = "0.1.0"' in (ws / "packages/peft-core/pyproject.toml").read_text()
    log = (foo / "CHANGELOG.md").read_text()
    assert "## [Unreleased]\n\n## [0.2.0] - 2025-06-01\n\n### Fixed\n- A crash.\n\n### Added\n- The foo method" in log
    assert log.index("## [0.2.0]") < log.index("## [0.1.0] - 2025-01-01")
    assert not (ws / "uv.lock").exists()  # no lock in this workspace: bumped with --frozen
    rc, data = plan_json(ws)
    assert rc == 0
    p = by_name(data)["peft-foo"]
    assert p["state"] == "bumped, not tagged" and p["unreleased"] == []


def test_bump_relocks_when_workspace_has_a_lock(ws: Path) -> None:
    lock = subprocess.run(["uv", "lock", "--quiet"], cwd=ws, env=_env(), text=True, capture_output=True)
    assert lock.returncode == 0, lock.stderr
    commit_all(ws, "lock")
    add_entry(ws / "packages/peft-foo", "Fixed", "A bug.")
    proc = release(ws, "bump", "peft-foo", "auto", "--date", "2025-06-07")
    assert proc.returncode == 0, proc.stderr
    assert "--no-sync" in proc.stdout and "uv.lock" in proc.stdout
    lock_text = (ws / "uv.lock").read_text()
    assert 'name = "peft-foo"\nversion = "0.1.1"' in lock_text
    assert 'name = "peft-core"\nversion = "0.1.0"' in lock_text


def test_bump_package_kept_out_of_the_workspace(ws: Path) -> None:
    # like peft-compat: excluded from [tool.uv.workspace], so `uv version --package` can't find it
    lock = subprocess.run(["uv", "lock", "--quiet"], cwd=ws, env=_env(), text=True, capture_output=True)
    assert lock.returncode == 0, lock.stderr
    root_toml = ws / "pyproject.toml"
    root_toml.write_text(root_toml.read_text() + 'exclude = ["packages/peft-foo"]\n')
    relock = subprocess.run(["uv", "lock", "--quiet"], cwd=ws, env=_env(), text=True, capture_output=True)
    assert relock.returncode == 0, relock.stderr
    lock_before = (ws / "uv.lock").read_text()
    foo = ws / "packages/peft-foo"
    add_entry(foo, "Fixed", "A bug.")
    commit_all(ws, "exclude foo")
    proc = release(ws, "bump", "peft-foo", "patch", "--date", "2025-06-08")
    assert proc.returncode == 0, proc.stderr
    assert "0.1.0 -> 0.1.1" in proc.stdout and "--frozen" in proc.stdout
    assert 'version = "0.1.1"' in (foo / "pyproject.toml").read_text()
    assert "## [0.1.1] - 2025-06-08\n\n### Fixed\n- A bug." in (foo / "CHANGELOG.md").read_text()
    assert (ws / "uv.lock").read_text() == lock_before  # the workspace lock does not hold it
    assert not (foo / "uv.lock").exists()


def test_bump_refuses_empty_unreleased(ws: Path) -> None:
    proc = release(ws, "bump", "peft-foo", "patch")
    assert proc.returncode == 1
    assert "Unreleased" in proc.stderr and "empty" in proc.stderr
    assert 'version = "0.1.0"' in (ws / "packages/peft-foo/pyproject.toml").read_text()


def test_bump_refuses_smaller_bump_than_entries_unless_forced(ws: Path) -> None:
    foo = ws / "packages/peft-foo"
    add_entry(foo, "Added", "A feature.")
    proc = release(ws, "bump", "peft-foo", "patch")
    assert proc.returncode == 1 and "call for a minor bump" in proc.stderr
    assert 'version = "0.1.0"' in (foo / "pyproject.toml").read_text()
    proc = release(ws, "bump", "peft-foo", "patch", "--force", "--date", "2025-06-02")
    assert proc.returncode == 0, proc.stderr
    assert 'version = "0.1.1"' in (foo / "pyproject.toml").read_text()


def test_bump_auto_and_current(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", released=False)
    proc = release(root, "bump", "peft-core", "auto", "--date", "2025-06-03")
    assert proc.returncode == 0, proc.stderr
    assert "current version 0.1.0" in proc.stdout
    core = root / "packages/peft-core"
    assert 'version = "0.1.0"' in (core / "pyproject.toml").read_text()
    assert "## [0.1.0] - 2025-06-03\n\n### Added\n- Initial release." in (core / "CHANGELOG.md").read_text()
    commit_all(root)
    git(root, "tag", "-a", "peft-core-v0.1.0", "-m", "x")
    add_entry(core, "Fixed", "x")
    proc = release(root, "bump", "peft-core", "current")
    assert proc.returncode == 1 and "already released" in proc.stderr


def test_bump_core_reports_dependents_out_of_range(ws: Path) -> None:
    core = ws / "packages/peft-core"
    add_entry(core, "Added", "New hook.")
    proc = release(ws, "bump", "peft-core", "minor", "--date", "2025-06-04")
    assert proc.returncode == 0, proc.stderr
    assert "OUTSIDE the declared range" in proc.stdout
    assert "peft-foo" in proc.stdout and "peft-core>=0.1,<0.3" in proc.stdout
    assert "Reminder" not in proc.stdout  # not breaking: no plugin API reminder
    assert release(ws, "plan").returncode == 1


def test_bump_core_breaking_reminds_about_plugin_api(ws: Path) -> None:
    core = ws / "packages/peft-core"
    add_entry(core, "Removed", "The old registry.")
    proc = release(ws, "bump", "peft-core", "auto", "--date", "2025-06-05")
    assert proc.returncode == 0, proc.stderr
    assert 'version = "0.2.0"' in (core / "pyproject.toml").read_text()  # 0.x: breaking -> minor
    assert "PLUGIN_API_VERSION" in proc.stdout and "_plugin_api.py" in proc.stdout


# ---------------------------------------------------------------- tag


def test_tag_creates_annotated_tag_and_refuses_dirty_or_existing(ws: Path) -> None:
    foo = ws / "packages/peft-foo"
    add_entry(foo, "Fixed", "Off-by-one in the foo scaling.")
    assert release(ws, "bump", "peft-foo", "patch", "--date", "2025-06-06").returncode == 0
    proc = release(ws, "tag", "peft-foo")  # bump not committed yet
    assert proc.returncode == 1 and "dirty" in proc.stderr and "pyproject.toml" in proc.stderr
    assert "peft-foo-v0.1.1" not in git(ws, "tag", "--list")
    commit_all(ws, "Release peft-foo 0.1.1")
    proc = release(ws, "tag", "peft-foo")  # never built: refused (test_release_verify.py has the rest)
    assert proc.returncode == 1 and "no verified build" in proc.stderr
    assert release(ws, "build", "peft-foo").returncode == 0
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 0, proc.stderr
    assert "peft-foo-v0.1.1" in git(ws, "tag", "--list").split()
    assert git(ws, "cat-file", "-t", "peft-foo-v0.1.1").strip() == "tag"  # annotated
    assert "Off-by-one" in git(ws, "tag", "-l", "--format=%(contents)", "peft-foo-v0.1.1")
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 1 and "already exists" in proc.stderr
    rc, data = plan_json(ws)
    assert rc == 0 and by_name(data)["peft-foo"]["state"] == "up to date"


def test_tag_refuses_version_without_changelog_section(ws: Path) -> None:
    set_version(ws / "packages/peft-foo", "0.1.0", "0.1.1")
    commit_all(ws)
    proc = release(ws, "tag", "peft-foo")
    assert proc.returncode == 1 and "no '## [0.1.1]' section" in proc.stderr


# ---------------------------------------------------------------- lowest-core


def test_lowest_core_without_tag_exits_3(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", released=False)
    proc = release(root, "lowest-core", "peft-foo")
    assert proc.returncode == 3
    assert "no peft-core release tag is admitted" in proc.stdout
    proc = release(root, "lowest-core", "--all", "--skip-missing")
    assert proc.returncode == 0 and "SKIP" in proc.stdout


def test_lowest_core_runs_tests_against_tagged_core(ws: Path) -> None:
    # core 0.1.1 adds an API; foo starts using it but still claims to support >=0.1
    core = ws / "packages/peft-core"
    init = core / "src/peft_core/__init__.py"
    init.write_text(init.read_text() + "\n\ndef new_api():\n    return 42\n")
    set_version(core, "0.1.0", "0.1.1")
    commit_all(ws)
    git(ws, "tag", "-a", "peft-core-v0.1.1", "-m", "peft-core 0.1.1")
    test = ws / "packages/peft-foo/tests/test_foo.py"
    test.write_text(test.read_text() + "\n\ndef test_new_api():\n    import peft_core\n\n    assert peft_core.new_api() == 42\n")
    commit_all(ws)

    proc = release(ws, "lowest-core", "peft-foo")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "peft-core 0.1.0 (tag peft-core-v0.1.0)" in proc.stdout
    assert "tests FAILED against peft-core 0.1.0" in proc.stdout

    pp = ws / "packages/peft-foo/pyproject.toml"
    pp.write_text(pp.read_text().replace("peft-core>=0.1,<0.2", "peft-core>=0.1.1,<0.2"))
    proc = release(ws, "lowest-core", "peft-foo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests passed against peft-core 0.1.1" in proc.stdout


# ---------------------------------------------------------------- misc


def test_root_option_before_or_after_command(ws: Path) -> None:
    before = subprocess.run([sys.executable, str(RELEASE), "--root", str(ws), "plan"], cwd=REPO, env=_env(),
                            text=True, capture_output=True)
    assert before.returncode == 0 and f"Workspace {ws}" in before.stdout


def test_unknown_package_is_a_clear_error(ws: Path) -> None:
    proc = release(ws, "bump", "peft-nope", "patch")
    assert proc.returncode == 1
    assert "no package 'peft-nope'" in proc.stderr and "peft-foo" in proc.stderr


def test_plan_runs_on_the_real_workspace() -> None:
    proc = release(REPO, "plan", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert "peft-core" in by_name(data)
    # every member is something `build` knows how to verify (a new kind of package says how)
    assert {p["name"]: p["kind"] for p in data["packages"] if p["kind"] not in ("core", "method", "app")} == {}
    assert by_name(data)["peft-cli"]["kind"] == "app"
