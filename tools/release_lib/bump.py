"""``bump``: raise one package's version with ``uv version`` and date its changelog entries."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from packaging.version import Version

from . import changelog as cl
from .errors import ReleaseError
from .gitinfo import last_release, show_file, tag_exists
from .plan import CMD, suggest_core_range
from .proc import uv
from .workspace import (
    CORE_DIST,
    PLUGIN_API_FILE,
    PLUGIN_API_NAME,
    discover,
    Package,
    find_package,
    is_workspace_member,
    load_package,
    plugin_api_version,
    read_plugin_api_version,
)

PARTS = ("major", "minor", "patch", "auto", "current")


def _uv_version(root: Path, pkg: Package, part: str, *, dry_run: bool, lock_mode: str) -> str:
    # a package kept out of the workspace is bumped as a project of its own: `--package` can't find it,
    # and the workspace lock doesn't hold it, so there is nothing to re-lock
    if is_workspace_member(root, pkg):
        target = ["--package", pkg.dist]
    else:
        target, lock_mode = ["--project", pkg.rel], "--frozen"
    args = ["version", *target, "--bump", part, "--output-format", "json", lock_mode]
    if dry_run:
        args.append("--dry-run")
    what = f"uv {' '.join(args)}"
    out = uv(root, *args, what=what).stdout
    return json.loads(out)["version"]


def cmd_bump(root: Path, ident: str, part: str, *, date: str | None, force: bool, frozen: bool) -> int:
    pkgs = discover(root)
    pkg = find_package(pkgs, ident)
    if pkg.load_problems:
        raise ReleaseError(f"{pkg.rel}: " + "; ".join(pkg.load_problems))
    version = pkg.parsed_version
    assert version is not None

    if not pkg.changelog_path.is_file():
        raise ReleaseError(f"{pkg.rel} has no CHANGELOG.md; create one with a '## [Unreleased]' section first")
    log = cl.Changelog.read(pkg.changelog_path)
    if not log.has_unreleased:
        raise ReleaseError(f"{pkg.rel}/CHANGELOG.md has no '## [Unreleased]' section; add it with the release's entries")
    entries = log.unreleased().entries
    if not entries:
        raise ReleaseError(
            f"refusing to bump {pkg.dist}: the '## [Unreleased]' section of {pkg.rel}/CHANGELOG.md is "
            "empty. Describe what this release changes there first (under '### Added', '### Fixed', ...)"
        )
    level = cl.bump_level(entries)
    wanted = cl.bump_part(level, version)
    assert wanted is not None
    last = last_release(root, pkg)

    if part == "auto":
        part = "current" if last is None else wanted
        print(f"{pkg.dist}: Unreleased entries call for a {level} change -> bump {part}")

    if part == "current":
        if tag_exists(root, pkg.tag_for(version)):
            raise ReleaseError(
                f"refusing 'bump {pkg.dist} current': {version} is already released (tag "
                f"{pkg.tag_for(version)}); pick major, minor or patch (entries call for {wanted})"
            )
        if last is not None and version < last[0]:
            raise ReleaseError(f"{pkg.dist} {version} is lower than its last release {last[1]}")
        new_version = str(version)
    else:
        if cl.LEVEL_ORDER[part] < cl.LEVEL_ORDER[wanted] and not force:
            raise ReleaseError(
                f"refusing to bump {pkg.dist} {part}: its Unreleased entries call for a {wanted} bump "
                f"({level} change; see docs/releasing.md for the rule). Use `bump {pkg.dist} {wanted}`, "
                "or --force if you are sure"
            )
        relock = not frozen and (root / "uv.lock").is_file() and is_workspace_member(root, pkg)
        lock_mode = "--no-sync" if relock else "--frozen"
        new_version = _uv_version(root, pkg, part, dry_run=True, lock_mode="--frozen")

    if log.has_version(new_version):
        raise ReleaseError(f"{pkg.rel}/CHANGELOG.md already has a '## [{new_version}]' section; fix the changelog first")
    if part != "current":
        done = _uv_version(root, pkg, part, dry_run=False, lock_mode=lock_mode)
        if Version(done) != Version(new_version):
            raise ReleaseError(f"uv bumped {pkg.dist} to {done}, expected {new_version}")
        reread = load_package(root, pkg.dir).version
        if reread is None or Version(reread) != Version(new_version):
            raise ReleaseError(f"{pkg.rel}/pyproject.toml says {reread} after the bump, expected {new_version}")

    day = date or _dt.date.today().isoformat()
    pkg.changelog_path.write_text(log.release(new_version, day), encoding="utf-8")

    if part == "current":
        print(f"{pkg.dist}: releasing the current version {new_version} (version unchanged)")
    else:
        print(f"{pkg.dist}: {version} -> {new_version} (uv version --bump {part} {lock_mode})")
    print(f"{pkg.rel}/CHANGELOG.md: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} moved under "
          f"'## [{new_version}] - {day}'")

    if pkg.is_core:
        _report_core_bump(root, pkgs, pkg, Version(new_version), part, level, last)

    files = [f"{pkg.rel}/pyproject.toml", f"{pkg.rel}/CHANGELOG.md"]
    if part != "current" and lock_mode == "--no-sync":
        files.append("uv.lock")
    print("\nNext: review and commit " + " ".join(files) + f", then `{CMD} build {pkg.dist}` and "
          f"`{CMD} tag {pkg.dist}`")
    return 0


def _report_core_bump(root, pkgs, core, new_version: Version, part: str, level: str | None, last) -> None:
    """After a core bump: method packages whose range no longer admits it, and the plugin API."""
    stale = [p for p in pkgs if p.core_requirement is not None
             and not p.core_requirement.specifier.contains(new_version, prereleases=True)]
    if stale:
        print(f"\n!! {CORE_DIST} {new_version} is OUTSIDE the declared range of {len(stale)} method package(s):")
        for p in stale:
            print(f"   - {p.dist} ({p.rel}) requires \"{p.core_requirement_text}\"; after checking it works with "
                  f"{new_version}, change it to e.g. \"{suggest_core_range(p.core_requirement.specifier, new_version)}\" "
                  "and add a '### Changed' entry to its CHANGELOG")
        print(f"   `{CMD} plan` fails until they are updated.")
    else:
        dependents = [p.dist for p in pkgs if p.core_requirement is not None]
        if dependents:
            print(f"\nAll method packages ({', '.join(dependents)}) admit {CORE_DIST} {new_version}.")

    api = plugin_api_version(core)
    api_file = f"{core.rel}/{PLUGIN_API_FILE.as_posix()}"
    breaking = part == "major" or level == "major"
    if breaking:
        print(f"\nReminder: this {CORE_DIST} release is breaking. If anything method packages build on "
              f"changed (register_peft_method, tuner base classes, the config/save format), bump "
              f"{PLUGIN_API_NAME} in {api_file} (now {api if api is not None else 'missing'}) and have "
              "method packages declare the new plugin_api range.")
    if last is not None and api is not None:
        old_text = show_file(root, last[1], api_file)
        old = read_plugin_api_version(old_text) if old_text else None
        if old is not None and old != api and not breaking:
            print(f"\n!! {PLUGIN_API_NAME} changed {old} -> {api} since {last[1]}, but this is a {part} "
                  "bump without a BREAKING entry: a plugin API change breaks method packages. Consider "
                  "reverting (git checkout) and bumping as a breaking release.")
