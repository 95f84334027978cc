"""``publish``: upload exactly the files ``build`` verified for a tagged release, with ``uv publish``.

Refuses unless the release tag ``<dist>-v<version>`` exists and the stamp in ``dist/<dist>/`` was
written for the tag's commit, from a clean tree, with the files unchanged since. Credentials are
uv's (``UV_PUBLISH_TOKEN``, ``UV_PUBLISH_USERNAME``/``UV_PUBLISH_PASSWORD``, trusted publishing).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from . import stamp
from .errors import ReleaseError
from .gitinfo import tag_exists
from .proc import git, uv
from .workspace import discover, find_package


def cmd_publish(root: Path, ident: str, *, publish_url: str | None, check_url: str | None,
                dry_run: bool = False) -> int:
    pkg = find_package(discover(root), ident)
    if pkg.parsed_version is None:
        raise ReleaseError(f"{pkg.rel} has no valid static version; nothing to publish")
    tag = pkg.tag_for(pkg.parsed_version)
    if not tag_exists(root, tag):
        raise ReleaseError(f"refusing to publish {pkg.dist} {pkg.version}: there is no tag {tag}. "
                           f"Run `uv run tools/release.py tag {pkg.dist}` first (it needs a verified build)")
    commit = git(root, "rev-parse", f"{tag}^{{commit}}").stdout.strip()
    verified = stamp.require_verified(root, pkg, commit, f"publish {tag}")
    files = [str(stamp.stamp_path(root, pkg).parent / name) for name in sorted(verified["files"])]
    args = ["publish"]
    if publish_url:
        args += ["--publish-url", publish_url]
    if check_url:
        args += ["--check-url", check_url]
    args += files
    shown = " ".join(shlex.quote(a) for a in ["uv", *args])
    if dry_run:
        print(f"would run: {shown}")
        return 0
    print(f"$ {shown}")
    proc = uv(root, *args, check=False)
    print((proc.stdout + proc.stderr).strip())
    if proc.returncode != 0:
        raise ReleaseError(f"uv publish of {pkg.dist} {pkg.version} failed (exit {proc.returncode})")
    print(f"published {pkg.dist} {pkg.version} ({tag}, commit {commit[:12]})")
    return 0
