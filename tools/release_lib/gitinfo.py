"""Release tags and change detection, from git."""

from __future__ import annotations

from pathlib import Path

from packaging.version import InvalidVersion, Version

from .proc import git
from .workspace import Package


def release_tags(root: Path, pkg: Package) -> list[tuple[Version, str]]:
    """All ``<dist>-v<version>`` tags of a package, lowest version first. Tags whose suffix is
    not a version (e.g. ``peft-core-v2-rename``) are ignored."""
    out = git(root, "tag", "--list", f"{pkg.tag_prefix}*").stdout.split()
    tags: list[tuple[Version, str]] = []
    for tag in out:
        try:
            tags.append((Version(tag[len(pkg.tag_prefix):]), tag))
        except InvalidVersion:
            continue
    tags.sort()
    return tags


def last_release(root: Path, pkg: Package) -> tuple[Version, str] | None:
    tags = release_tags(root, pkg)
    return tags[-1] if tags else None


def tag_exists(root: Path, tag: str) -> bool:
    return git(root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).returncode == 0


def changed_files(root: Path, tag: str, pkg: Package) -> list[str]:
    """Files under the package folder that differ between ``tag`` and the working tree
    (committed or not, untracked files included). The package's CHANGELOG.md is ignored:
    writing changelog entries is not a code change."""
    rel = pkg.rel
    exclude = f":(exclude){rel}/CHANGELOG.md"
    diff = git(root, "diff", "--name-only", tag, "--", rel, exclude).stdout.split("\n")
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "--", rel, exclude).stdout.split("\n")
    return sorted({f for f in diff + untracked if f.strip()})


def dirty_files(root: Path) -> list[str]:
    """``git status --porcelain`` lines (untracked, not ignored files included)."""
    return [line for line in git(root, "status", "--porcelain").stdout.splitlines() if line.strip()]


def show_file(root: Path, rev: str, path: str) -> str | None:
    proc = git(root, "show", f"{rev}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None
