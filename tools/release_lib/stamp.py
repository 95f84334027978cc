"""The verification stamp: ``dist/<dist>/verified.json``, written by ``build`` when every check passed.

It records what was verified (package, version, commit, the sha256 of the wheel and sdist, the
member wheels it was verified with, the cases run) so that ``tag`` and ``publish`` can refuse a
package whose exact files were never verified: no stamp, another commit or version, a tree that
was dirty while building, or files changed since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from pathlib import Path

from .errors import ReleaseError
from .gitinfo import dirty_files
from .proc import git
from .workspace import Package

STAMP_NAME = "verified.json"
CMD = "uv run tools/release.py"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def head_commit(root: Path) -> str | None:
    proc = git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def stamp_path(root: Path, pkg: Package) -> Path:
    return root / "dist" / pkg.name / STAMP_NAME


def clear(root: Path, pkg: Package) -> None:
    stamp_path(root, pkg).unlink(missing_ok=True)


def write(root: Path, pkg: Package, files: list[Path], members: dict[str, Path], cases: list[dict],
          commit: str | None, dirty: list[str]) -> Path:
    data = {
        "package": pkg.name,
        "version": pkg.version,
        "commit": commit,
        "dirty": dirty,
        "verified_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "files": {f.name: sha256(f) for f in files},
        "verified_with": {name: {"file": w.name, "sha256": sha256(w)} for name, w in members.items()
                          if name != pkg.name},
        "cases": [{k: c[k] for k in ("dist", "method", "id", "status")} for c in cases],
    }
    path = stamp_path(root, pkg)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def require_verified(root: Path, pkg: Package, commit: str, what: str) -> dict:
    """The stamp of ``pkg``'s current version built and verified at ``commit`` from a clean tree,
    with its files unchanged since; otherwise ReleaseError saying why and what to run."""
    path = stamp_path(root, pkg)
    rebuild = f"Run `{CMD} build {pkg.dist}` on a clean checkout of {commit[:12]} first"
    rel = path.relative_to(root).as_posix()
    if not path.is_file():
        raise ReleaseError(f"refusing to {what}: {pkg.dist} {pkg.version} has no verified build ({rel} is missing). {rebuild}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"refusing to {what}: {rel} is unreadable ({exc}). {rebuild}") from exc
    if data.get("package") != pkg.name or data.get("version") != pkg.version:
        raise ReleaseError(f"refusing to {what}: the verified build in {rel} is {data.get('package')} "
                           f"{data.get('version')}, not {pkg.dist} {pkg.version}. {rebuild}")
    if data.get("dirty"):
        shown = ", ".join(data["dirty"][:5])
        raise ReleaseError(f"refusing to {what}: {pkg.dist} {pkg.version} was built from a dirty working tree "
                           f"({shown}), so the files may not match any commit. {rebuild}")
    if data.get("commit") != commit:
        raise ReleaseError(f"refusing to {what}: {pkg.dist} {pkg.version} was verified at commit "
                           f"{str(data.get('commit'))[:12]}, not at {commit[:12]}. {rebuild}")
    files = data.get("files") or {}
    if not files:
        raise ReleaseError(f"refusing to {what}: {rel} lists no files. {rebuild}")
    for name, digest in files.items():
        f = path.parent / name
        if not f.is_file() or sha256(f) != digest:
            state = "is missing" if not f.is_file() else "changed since it was verified"
            raise ReleaseError(f"refusing to {what}: {f.relative_to(root).as_posix()} {state}. {rebuild}")
    return data


def current_state(root: Path) -> tuple[str | None, list[str]]:
    """(HEAD commit, dirty files) to record in a stamp."""
    commit = head_commit(root)
    if commit is None:
        return None, ["(no commit: not a git repository, or nothing committed yet)"]
    return commit, dirty_files(root)
