"""Helpers shared by peft-compat's tests (put on sys.path by conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def run_python(python: str, script: str | Path, *args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run `script` with `python` in `cwd` (never the source tree, so `peft` is the installed one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONHASHSEED"] = "0"
    proc = subprocess.run([python, str(script), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{python} {script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def ours() -> str:
    """This environment's interpreter (peft-compat)."""
    return sys.executable
