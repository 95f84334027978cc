"""peft-compat's tests run in its own environment (see tests/_compat_env.py at the workspace root), where
`peft` is peft-compat. `PEFT_COMPAT_HF_PYTHON` names an interpreter with Hugging Face PEFT (the root venv's),
which the comparison tests run the same programs with."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _peft_is_peft_compat() -> bool:
    try:
        return importlib.metadata.distribution("peft").metadata["Name"] == "peft-compat"
    except importlib.metadata.PackageNotFoundError:
        return False


# The workspace root's `uv run pytest` reaches this folder through `testpaths = packages/*/tests`, in the root
# venv where `peft` is Hugging Face's: these tests belong to peft-compat's own environment (run by
# `uv run pytest -m compat_env tests`, see tests/test_peft_compat_package.py), so none is collected there.
if not _peft_is_peft_compat():
    collect_ignore_glob = ["test_*.py", "_support/*", "programs/*", "hf_suite/*"]

HERE = Path(__file__).resolve().parent
SUPPORT = str(HERE / "_support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)


@pytest.fixture(scope="session")
def hf_python() -> str:
    python = os.environ.get("PEFT_COMPAT_HF_PYTHON")
    if not python:
        pytest.fail(
            "PEFT_COMPAT_HF_PYTHON is not set: these tests compare with Hugging Face PEFT run by that interpreter. "
            "Run them with `uv run pytest -m compat_env tests` from the workspace root, which sets it."
        )
    probe = "import importlib.metadata as m; print(m.distribution('peft').metadata['Name'], m.version('peft'))"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["peft", "0.21.2"], f"{python} must have Hugging Face peft 0.21.2, found {out}"
    return python


@pytest.fixture(scope="session", autouse=True)
def peft_is_peft_compat() -> None:
    assert importlib.metadata.distribution("peft").metadata["Name"] == "peft-compat"
