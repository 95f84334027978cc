"""``tag``: the annotated release tag ``<dist>-v<version>`` for a package's current version."""

from __future__ import annotations

from pathlib import Path

from . import changelog as cl
from . import stamp
from .errors import ReleaseError
from .gitinfo import dirty_files, last_release, tag_exists
from .plan import make_plan
from .proc import git
from .workspace import find_package


def cmd_tag(root: Path, ident: str, *, dry_run: bool = False) -> int:
    plan = make_plan(root)
    pkg = find_package([c.pkg for c in plan.packages], ident)
    version = pkg.parsed_version
    if version is None:
        raise ReleaseError(f"{pkg.rel} has no valid static version; cannot tag")
    tag = pkg.tag_for(version)

    dirty = dirty_files(root)
    if dirty:
        shown = "\n  ".join(dirty[:15]) + ("\n  ..." if len(dirty) > 15 else "")
        raise ReleaseError(
            f"refusing to tag {tag}: the working tree is dirty, so the tag would not match what was "
            f"built and checked. Commit or stash these first:\n  {shown}"
        )
    if tag_exists(root, tag):
        raise ReleaseError(
            f"refusing to tag: {tag} already exists ({pkg.dist} {version} is released). To release new "
            f"changes, add CHANGELOG entries and run `bump {pkg.dist} <part>` first"
        )
    last = last_release(root, pkg)
    if last is not None and version < last[0]:
        raise ReleaseError(f"refusing to tag {tag}: it is lower than the latest release {last[1]}")
    log = cl.Changelog.read(pkg.changelog_path) if pkg.changelog_path.is_file() else None
    notes = log.version_section(version) if log else None
    if notes is None:
        raise ReleaseError(
            f"refusing to tag {tag}: {pkg.rel}/CHANGELOG.md has no '## [{version}]' section. Run "
            f"`bump {pkg.dist} <part>` (or `bump {pkg.dist} current` for a first release) to create it"
        )
    own = plan.problems_of(pkg.name)
    if own:
        raise ReleaseError(
            f"refusing to tag {tag}: `plan` reports problems for {pkg.dist}:\n  "
            + "\n  ".join(f.message for f in own)
        )
    commit = stamp.head_commit(root)
    assert commit is not None  # a clean tree has a commit
    verified = stamp.require_verified(root, pkg, commit, f"tag {tag}")
    files = "\n".join(f"  {name}  sha256:{digest}" for name, digest in sorted(verified["files"].items()))
    message = f"{pkg.dist} {version}\n\n{notes.strip()}\n\nVerified build ({verified['verified_at']}):\n{files}\n"
    if dry_run:
        print(f"would create annotated tag {tag} on HEAD with message:\n{message}")
        return 0
    git(root, "tag", "-a", tag, "-m", message)
    head = git(root, "rev-parse", "--short", "HEAD").stdout.strip()
    print(f"created annotated tag {tag} on {head}")
    stem = f"dist/{pkg.name}/{pkg.name.replace('-', '_')}-{version}"
    print(f"Next: git push origin {tag}, then `uv run tools/release.py publish {pkg.dist}` "
          f"(uploads {stem}-*.whl and {stem}.tar.gz)")
    return 0
