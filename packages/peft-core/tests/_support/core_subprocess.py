"""Helpers for tests that need a fresh interpreter and fake installed distributions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_python(code: str, pythonpath: list[Path] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def fake_distribution(
    site: Path,
    dist: str,
    version: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    group: str = "peft.methods",
    requires: tuple[str, ...] = (),
) -> None:
    """An installed-looking distribution: modules plus a .dist-info that importlib.metadata reads."""
    for rel, source in modules.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    requires_lines = "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requires_lines}")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    if entry_points:
        (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")


METHOD_SOURCE = '''
from dataclasses import dataclass
from typing import Optional
import torch
from torch import nn
from peft_core import BaseTuner, BaseTunerLayer, PeftConfig, register_peft_method

@dataclass
class ScaleConfig(PeftConfig):
    peft_type: str = "SCALE"
    target_modules: Optional[list[str]] = None

class ScaleLayer(BaseTunerLayer):
    adapter_layer_names = ("scale_s",)
    def __init__(self, base):
        super().__init__(base)
        self.scale_s = nn.ParameterDict()
    def update_layer(self, name):
        self.scale_s[name] = nn.Parameter(torch.linspace(0.5, 1.5, self.get_base_layer().out_features))
    def forward(self, x):
        out = self.base_layer(x)
        if self._unmerge_if_disabled():
            return out
        for name in self.active_adapters:
            out = out * self.scale_s[name]
        return out

class ScaleModel(BaseTuner):
    prefix = "scale_"
    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, ScaleLayer):
            target.update_layer(adapter_name)
            return
        layer = ScaleLayer(target)
        layer.update_layer(adapter_name)
        setattr(parent, target_name, layer)

register_peft_method(name="scale", config_cls=ScaleConfig, model_cls=ScaleModel, plugin_api=">=1,<2")
'''
