"""The quickstart in docs/examples runs end to end (a few steps), so it cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[3] / "docs" / "examples" / "quickstart.py"


@pytest.mark.skipif(not QUICKSTART.is_file(), reason="runs from the workspace checkout only")
def test_quickstart_runs(tmp_path):
    pytest.importorskip("transformers")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(QUICKSTART), "--steps", "3", "--out", str(tmp_path / "adapter")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "LoRA quickstart report" in out and "identical (torch.equal)" in out and "over 3 steps" in out
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert "LoRA fine-tuning" in proc.stderr  # the tqdm progress bar
