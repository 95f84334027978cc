"""Fresh virtual environments for verification, made with uv.

``uv venv`` + ``uv pip install`` link packages from uv's cache, so a venv with torch takes a
second or two once the cache is warm; every check can afford a venv of its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from packaging.utils import canonicalize_name

from .proc import run, uv


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def venv_bin(venv: Path) -> Path:
    return venv_python(venv).parent


def make_venv(cwd: Path, venv: Path, python: str | None = None) -> Path:
    """Create ``venv`` (or reuse it if it exists); returns its interpreter."""
    if venv_python(venv).exists():
        print(f"reusing venv {venv}")
    else:
        args = ["venv", "--quiet", str(venv)]
        if python:
            args += ["--python", python]
        uv(cwd, *args)
    return venv_python(venv)


def pip_install(py: Path, cwd: Path, items: Sequence[str], *, extra_args: Sequence[str] = (),
                check: bool = False):
    """``uv pip install --python PY ITEMS``; returns the completed process (check=False: the caller
    reports a failed install in its own words)."""
    return uv(cwd, "pip", "install", "--quiet", "--python", str(py), *extra_args, *items, check=check)


def installed(py: Path, cwd: Path) -> dict[str, str]:
    """Canonical distribution name -> version of everything installed in the venv of ``py``."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = run([str(py), "-I", "-c", code], cwd).stdout
    return {canonicalize_name(k): v for k, v in json.loads(out).items()}
