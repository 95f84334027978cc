"""The benchmark suite (tools/bench) runs end to end in its quick setting, so it cannot rot.

Deselected by default (marker `bench`); run with `uv run pytest -m bench tests/test_bench_smoke.py`.
It runs the README's command with `--quick` (tiny models, 2 repeats) in a fresh interpreter and
checks that every case produced timings for both libraries and its ratios, and the Markdown tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = {"import", "inject", "train", "mixed", "merge", "save_load", "load_memory", "qlora", "tenants", "train_memory"}


@pytest.mark.bench
def test_bench_quick_run_covers_every_case(tmp_path: Path) -> None:
    out, tables = tmp_path / "results.json", tmp_path / "tables.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench"), "--quick", "--json", str(out), "--markdown", str(tables)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["machine"]["setting"] == "quick"
    results = {r["case"]: r for r in data["results"]}
    assert set(results) == CASES
    for case, res in results.items():
        variants = res["variants"]
        assert any(name.startswith("ours") for name in variants), case
        assert any(name.startswith("hf") for name in variants), case
        for name, v in variants.items():
            assert v["wall_s"]["median"] > 0, (case, name)
        assert res["ratios"], case
        for r in res["ratios"]:
            assert r["wall"] is not None and r["wall"] > 0, (case, r)
    assert "## train" in proc.stdout and "ratio ours/frozen base" in proc.stdout
    markdown = tables.read_text()
    for case in CASES:
        assert f"### {case}: " in markdown, case
    assert "| ours/frozen base |" in markdown
