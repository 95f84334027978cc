"""`peft demo`: train, save, reload, verify, merge on the built-in text; --plot; --method."""

from __future__ import annotations

import sys

import pytest


def test_demo_lora_with_plot(invoke, tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "adapter", tmp_path / "loss.png"
    result = invoke("demo", "--steps", "3", "--out", str(out), "--plot", str(png))
    assert result.exit_code == 0, result.output
    report = result.stdout
    assert "peft demo (LoRA) report" in report
    assert "over 3 steps" in report and "identical (torch.equal)" in report
    assert "after merge_and_unload (LlamaForCausalLM)" in report
    assert "LoRA fine-tuning" in result.stderr  # the progress bar
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_other_method(invoke):
    result = invoke("demo", "--method", "ia3", "--steps", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "peft demo ((IA)³) report" in result.stdout and "ia3 (peft-ia3" in result.stdout
    assert "after merge_and_unload" in result.stdout


def test_demo_engine_skips_merge_for_prompt_learning():
    from peft_core import installed_methods

    if "prompt_tuning" not in {m.name for m in installed_methods()}:
        pytest.skip("peft-prompt-tuning is not installed")
    from peft_cli.demo import format_report, run_demo

    report = run_demo("prompt_tuning", steps=1, progress=False)
    assert report.merge_max_diff is None and "prompt-learning" in report.merge_skipped
    assert "merged outputs       skipped: prompt-learning" in format_report(report, saved=False)


def test_demo_ships_its_text():
    from peft_cli.demo import CharVocab, default_text

    text = default_text()
    assert 2000 < len(text) < 10000 and "Wren" in text
    vocab = CharVocab.from_text(text)
    assert vocab.decode(vocab.encode("Wren wrote")) == "Wren wrote"


def test_demo_errors(invoke, tmp_path, monkeypatch):
    result = invoke("demo", "--method", "no_such_method", "--steps", "1")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "method 'no_such_method' is not available" in lines[0]
    assert "does not guess package names" in lines[0] and "peft-no-such-method" not in lines[0]

    result = invoke("demo", "--steps", "0")
    assert result.exit_code == 2 and "--steps" in result.stderr

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the [plot] extra were missing
    result = invoke("demo", "--steps", "1", "--plot", str(tmp_path / "loss.png"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "peft demo: error: --plot needs matplotlib: pip install 'peft-cli[plot]' (or: uv add 'peft-cli[plot]')"
