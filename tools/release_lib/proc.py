"""Thin wrappers around the git and uv command lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from .errors import ReleaseError


def uv_executable() -> str:
    """The uv binary: ``$UV`` (uv sets it for ``uv run``), else ``uv`` on PATH."""
    exe = os.environ.get("UV") or shutil.which("uv")
    if not exe:
        raise ReleaseError("uv was not found: install uv (https://docs.astral.sh/uv/) or set $UV to its path")
    return exe


def clean_env() -> dict[str, str]:
    """Environment for child processes: drop the caller's active virtualenv so uv and the
    throwaway venvs never pick it up by accident."""
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    return env


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    check: bool = True,
    capture: bool = True,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure (with ``check``) raise ReleaseError carrying its output."""
    proc = subprocess.run(
        list(args),
        cwd=str(cwd),
        env=clean_env(),
        text=True,
        capture_output=capture,
    )
    if check and proc.returncode != 0:
        detail = ""
        if capture:
            detail = (proc.stdout or "") + (proc.stderr or "")
            detail = "\n" + detail.strip() if detail.strip() else ""
        label = what or " ".join(str(a) for a in args)
        raise ReleaseError(f"{label} failed (exit {proc.returncode}){detail}")
    return proc


def git(root: Path, *args: str, check: bool = True, what: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(["git", *args], root, check=check, what=what)


def uv(
    cwd: Path, *args: str, check: bool = True, capture: bool = True, what: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([uv_executable(), *args], cwd, check=check, capture=capture, what=what or f"uv {' '.join(args)}")


def git_toplevel(cwd: Path) -> Path:
    proc = run(["git", "rev-parse", "--show-toplevel"], cwd, check=False)
    if proc.returncode != 0:
        raise ReleaseError(
            f"{cwd} is not inside a git repository; run from the workspace or pass --root <workspace>"
        )
    return Path(proc.stdout.strip())
