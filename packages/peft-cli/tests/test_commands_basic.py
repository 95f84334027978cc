"""`peft --help`, `peft methods`, `peft inspect`, and the one-line error contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import save_file
import torch

COMMANDS = ["methods", "inspect", "merge", "demo"]


def test_help_on_every_command(invoke):
    top = invoke("--help")
    assert top.exit_code == 0
    for name in COMMANDS:
        assert name in top.stdout
        result = invoke(name, "--help")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith(f"Usage: peft {name}")


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0 and "peft" in result.stdout and "0." in result.stdout


def test_methods_lists_installed_methods(invoke):
    result = invoke("methods")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["method", "distribution", "version", "prefix"]
    lora = next(line for line in lines if line.startswith("lora "))
    assert "peft-lora" in lora and "lora_" in lora and "peft_lora" in lora and lora.rstrip().endswith("ok")

    rows = json.loads(invoke("methods", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["ia3"]["prefix"] == "ia3_" and by_name["ia3"]["distribution"] == "peft-ia3"
    assert by_name["lora"]["peft_type"] == "LORA" and by_name["lora"]["problem"] is None


def test_methods_reports_a_broken_package_and_a_name_conflict(tmp_path):
    """A package that can't register (prefix taken) and an entry point advertised twice: both reported, exit 1."""
    site = tmp_path / "site"
    pkg = site / "peft_broken"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(
        """
        from dataclasses import dataclass

        import peft_lora  # noqa: F401  (LoRA registers "lora_" first, whatever the entry points' order)
        from peft_core import BaseTuner, PeftConfig, register_peft_method

        @dataclass
        class BrokenConfig(PeftConfig):
            peft_type: str = "BROKEN"

        class BrokenModel(BaseTuner):
            prefix = "lora_"

            def _create_and_replace(self, *args, **kwargs):
                pass

        register_peft_method(name="broken", config_cls=BrokenConfig, model_cls=BrokenModel, prefix="lora_")
        """
    ))
    info = site / "peft_broken-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: peft-broken\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[peft.methods]\nbroken = peft_broken\nlora = peft_broken\n")
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "peft_cli", "methods"], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    broken = next(line for line in proc.stdout.splitlines() if line.startswith("broken:"))
    assert "RegistrationError" in broken and "lora_" in broken
    lora = next(line for line in proc.stdout.splitlines() if line.startswith("lora:"))
    assert "conflict" in lora and "peft-broken" in lora and "peft-lora" in lora


def test_inspect_lora_adapter(invoke, lora_dir):
    result = invoke("inspect", str(lora_dir))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "method      lora (peft_type LORA); installed: peft-lora" in out
    assert "task        CAUSAL_LM" in out
    assert "targets     down_proj, q_proj, v_proj" in out
    assert "r=4" in out and "lora_alpha=8" in out and "init_lora_weights=false" in out

    facts = json.loads(invoke("inspect", str(lora_dir), "--json").stdout)
    assert len(facts) == 1 and facts[0]["name"] == "default"
    weights = facts[0]["weights"]
    from safetensors.torch import load_file

    state = load_file(lora_dir / "adapter_model.safetensors")
    assert weights["tensors"] == len(state) == 12  # 2 layers x 3 targets x (A, B)
    assert weights["parameters"] == sum(t.numel() for t in state.values())
    assert weights["dtypes"] == {"float32": 12}
    assert weights["bytes"] == (lora_dir / "adapter_model.safetensors").stat().st_size
    assert facts[0]["settings"]["r"] == 4 and "lora_dropout" not in facts[0]["settings"]  # defaults hidden


def test_inspect_without_the_methods_package(invoke, tmp_path):
    """An adapter of a method that isn't installed: read from the files, with the install hint."""
    folder = tmp_path / "fancy"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "FANCY_ADAPTER", "task_type": "SEQ_CLS", "r": 3, "target_modules": ["k", "q"],
        "fancy_dropout": 0.0, "base_model_name_or_path": "org/model",
    }))
    save_file({"a": torch.zeros(3, 5, dtype=torch.bfloat16), "b": torch.zeros(7, dtype=torch.float16)},
              folder / "adapter_model.safetensors")
    sub = folder / "second"
    sub.mkdir()
    (sub / "adapter_config.json").write_text(json.dumps({"peft_type": "FANCY_ADAPTER", "r": 1}))
    result = invoke("inspect", str(folder))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "NOT installed: install the package that provides the method 'fancy_adapter'" in out
    assert "peft-fancy-adapter" not in out  # no package name built from the (untrusted) adapter file
    assert "22 parameters" in out and "bfloat16 (1), float16 (1)" in out
    assert "r=3" in out and "fancy_dropout" not in out  # empty values hidden without the package
    assert "adapter     second" in out and "weights     missing" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nope", "does not exist"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is not a folder"),
        (lambda p: p, "has no adapter_config.json"),
    ],
)
def test_inspect_user_errors_are_one_line(invoke, tmp_path, make, message):
    result = invoke("inspect", str(make(tmp_path)))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("peft inspect: error: ") and message in lines[0]


def test_usage_errors_are_one_line(invoke):
    result = invoke("merge", "--base", "x")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "peft merge: error: Missing option" in lines[0] and "--help" in lines[0]
    result = invoke("frobnicate")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_console_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "peft_cli", "inspect", str(tmp_path / "missing")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"peft inspect: error: '{tmp_path / 'missing'}' does not exist"]
