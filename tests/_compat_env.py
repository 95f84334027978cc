"""peft-compat's own environment: the root lock's pins, no Hugging Face `peft`, peft-compat installed from a wheel.

peft-compat's import name is `peft`, like Hugging Face PEFT's, which the root venv holds for compatibility
tests, so its tests can't run there. This module builds a venv next to it from `uv.lock` (every workspace
member, editable, plus the `peft-compat-env` group; `uv export` gives the exact pins, the warm uv cache the
files) and installs peft-compat itself as a built wheel, the way users get it (its RECORD is what maps the
`peft` import to the peft-compat distribution). `overrides` replace pins (e.g. another transformers).

    uv run python tests/_compat_env.py build DIR [--override 'transformers==X']   # for working on peft-compat
    DIR/bin/python -m pytest packages/peft-compat/tests -c DIR/pytest.ini --rootdir packages/peft-compat
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
COMPAT_DIR = ROOT / "packages" / "peft-compat"
GROUP = "peft-compat-env"
# transformers 5.24 requires peft >= 0.22.0 for its adapter integration (`add_adapter`, `load_adapter`,
# ...), a release that does not exist; it refuses Hugging Face PEFT 0.21.2 and peft-compat (API 0.21.2) alike.
# The integration tests run against the newest release that accepts 0.21.2.
ADAPTER_MIXIN_TRANSFORMERS = "transformers==5.23.0"


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is not on PATH; install it (pip install uv).")
    return uv


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


def _run(cmd: Sequence[str], log: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=_env(), **kwargs)
    log.append(f"$ {' '.join(map(str, cmd))}  ({time.monotonic() - started:.1f} s, rc={proc.returncode})\n"
               f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    if proc.returncode != 0:
        raise RuntimeError("\n".join(log[-1:]))
    return proc


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def build(venv: Path, overrides: Sequence[str] = (), log: list[str] | None = None) -> Path:
    """Create `venv` (replacing it) and install peft-compat's test environment; returns its python."""
    log = [] if log is None else log
    uv = _uv()
    venv = Path(venv)
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    requirements = venv.parent / f"{venv.name}-requirements.txt"
    proc = _run(
        [uv, "export", "--locked", "--no-hashes", "--all-packages", "--no-default-groups", "--group", GROUP,
         "--no-emit-package", "peft", "--format", "requirements.txt", "--no-header", "--no-annotate"],
        log, cwd=ROOT,
    )
    requirements.write_text(proc.stdout)
    _run([uv, "venv", str(venv), "--python", sys.executable, "--quiet"], log, cwd=ROOT)
    python = python_of(venv)
    install = [uv, "pip", "install", "--python", str(python), "-r", str(requirements)]
    if overrides:
        override_file = venv.parent / f"{venv.name}-overrides.txt"
        override_file.write_text("\n".join(overrides) + "\n")
        install += ["--override", str(override_file)]
    _run(install, log, cwd=ROOT, timeout=1800)
    # peft-compat as users get it: a built (non-editable) wheel, whose RECORD maps `peft` to peft-compat
    _run([uv, "pip", "install", "--python", str(python), "--no-deps", "--reinstall-package", "peft-compat",
          str(COMPAT_DIR)], log, cwd=ROOT, timeout=900)
    (venv / "pytest.ini").write_text(
        "[pytest]\naddopts = --import-mode=importlib -p no:cacheprovider\n"
        "filterwarnings =\n    ignore::DeprecationWarning:torch.*\n"
    )
    return python


def swap_in(venv: Path, requirements: Sequence[str], log: list[str] | None = None) -> None:
    """Install `requirements` (e.g. another transformers) into an existing environment: cheaper than building a
    second one, for a job that needs a variant after the main run."""
    _run([_uv(), "pip", "install", "--python", str(python_of(venv)), *requirements], [] if log is None else log,
         cwd=ROOT, timeout=900)


def pytest_command(venv: Path, *args: str) -> list[str]:
    """Run peft-compat's tests (or `args`) in `venv`, with a config of their own (not the root's)."""
    return [str(python_of(venv)), "-m", "pytest", "-c", str(Path(venv) / "pytest.ini"), "--rootdir", str(COMPAT_DIR),
            *(args or [str(COMPAT_DIR / "tests")])]


def test_environment(hf_python: str | None = None) -> dict[str, str]:
    """Environment for the tests: `PEFT_COMPAT_HF_PYTHON` is an interpreter with Hugging Face PEFT (the
    root venv's), which the tests use to produce reference outputs."""
    env = _env()
    env["PEFT_COMPAT_HF_PYTHON"] = hf_python or sys.executable
    return env


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build peft-compat's test environment")
    b.add_argument("venv", type=Path)
    b.add_argument("--override", action="append", default=[])
    args = parser.parse_args(argv)
    log: list[str] = []
    started = time.monotonic()
    python = build(args.venv, args.override, log)
    print("\n".join(log))
    print(f"built {python} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
