"""Throwaway workspaces for the negative proofs: small method packages written to a temp folder."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Sequence

from _ws_jobs import run_checks_subprocess
from _ws_model import ENTRY_POINT_GROUP, _requirement, normalize

# --------------------------------------------------------------------------------------------------
# Throwaway workspaces for the negative proofs
# --------------------------------------------------------------------------------------------------

METHOD_TEMPLATE = """
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from peft_core import BaseTuner, BaseTunerLayer, PeftConfig, register_peft_method


@dataclass
class {cls}Config(PeftConfig):
    peft_type: str = "{upper}"
    target_modules: Optional[Union[list[str], str]] = None
    init_weights: bool = True


class {cls}Layer(BaseTunerLayer):
    adapter_layer_names = ("{attr}",)

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.{attr} = nn.ParameterDict()

    def update_layer(self, adapter_name, init_weights=True):
        n = self.get_base_layer().out_features
        self.{attr}[adapter_name] = nn.Parameter(torch.ones(n) if init_weights else torch.linspace(0.5, 1.5, n))
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def forward(self, x):
        out = self.base_layer(x)
        if self._unmerge_if_disabled():
            return out
        for name in self.active_adapters:
            if name in self.{attr}:
                out = out * self.{attr}[name]
        return out


class {cls}Model(BaseTuner):
    prefix = "{prefix}"

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        if isinstance(target, {cls}Layer):
            target.update_layer(adapter_name, config.init_weights)
            return
        layer = {cls}Layer(target)
        layer.update_layer(adapter_name, config.init_weights)
        setattr(parent, target_name, layer)
{extra_model}

register_peft_method(name="{name}", config_cls={cls}Config, model_cls={cls}Model, plugin_api=">=1,<2"{kwargs})
"""


def method_source(
    name: str,
    *,
    prefix: str | None = None,
    shares_prefix_with: str | None = None,
    preamble: str = "",
    extra_model: str = "",
) -> str:
    """Source of a small working method package `__init__` (a per-feature scale, like (IA)3)."""
    kwargs = ""
    if prefix is not None:
        kwargs += f", prefix={prefix!r}"
    if shares_prefix_with is not None:
        kwargs += f", shares_prefix_with={shares_prefix_with!r}"
    real_prefix = prefix if prefix is not None else f"{name}_"
    body = METHOD_TEMPLATE.format(
        cls="".join(part.capitalize() for part in name.split("_")),
        upper=name.upper(),
        attr=f"{real_prefix}s",
        prefix=real_prefix,
        name=name,
        kwargs=kwargs,
        extra_model=textwrap.indent(textwrap.dedent(extra_model), "    ") if extra_model else "",
    )
    return textwrap.dedent(preamble) + body


class FakeWorkspace:
    """A uv workspace written to `root`, whose packages look installed through `site` (fake dist-info)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.site = self.root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        (self.root / "packages").mkdir(exist_ok=True)
        (self.root / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["packages/*"]\n')
        self.sources: list[Path] = []

    def add(
        self,
        dist: str,
        modules: dict[str, str],
        *,
        dependencies: Sequence[str] = ("peft-core>=0.1,<0.2", "torch>=2.2"),
        entry_points: dict[str, str] | None = None,
        installed_entry_points: dict[str, str] | None = None,
        version: str = "0.1.0",
        dev: Sequence[str] = ("pytest>=8",),
        workspace_sources: Sequence[str] | None = None,
        pyproject_extra: str = "",
        changelog: str = "# Changelog\n\n## [Unreleased]\n",
        py_typed: bool = True,
        tests: dict[str, str] | None = None,
    ) -> Path:
        """Write packages/<dist>/ (pyproject, README, CHANGELOG, src/<import>/..., tests/) and its dist-info."""
        path = self.root / "packages" / dist
        import_name = dist.replace("-", "_")
        src = path / "src"
        for rel, source in modules.items():
            file = src / import_name / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(source))
        if py_typed:
            (src / import_name / "py.typed").write_text("")
        for rel, source in (tests if tests is not None else {"test_smoke.py": "def test_smoke():\n    pass\n"}).items():
            file = path / "tests" / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(source))
        (path / "README.md").write_text(f"# {dist}\n")
        (path / "CHANGELOG.md").write_text(changelog)
        if workspace_sources is None:
            workspace_sources = [
                d for d in (normalize(_requirement(r).name) for r in dependencies) if d.startswith("peft-")
            ]
        lines = [
            "[project]",
            f"name = {json.dumps(dist)}",
            f"version = {json.dumps(version)}",
            'requires-python = ">=3.10"',
            f"dependencies = {json.dumps(list(dependencies))}",
            "",
        ]
        if entry_points:
            lines += [f'[project.entry-points."{ENTRY_POINT_GROUP}"]']
            lines += [f"{k} = {json.dumps(v)}" for k, v in entry_points.items()] + [""]
        lines += ["[dependency-groups]", f"dev = {json.dumps(list(dev))}", ""]
        if workspace_sources:
            lines += ["[tool.uv.sources]"] + [f"{d} = {{ workspace = true }}" for d in workspace_sources] + [""]
        lines += [
            "[build-system]",
            'requires = ["hatchling>=1.25"]',
            'build-backend = "hatchling.build"',
            "",
            "[tool.hatch.build.targets.wheel]",
            f'packages = ["src/{import_name}"]',
            "",
        ]
        (path / "pyproject.toml").write_text("\n".join(lines) + pyproject_extra)
        info = self.site / f"{import_name}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
        meta += [f"Requires-Dist: {r}" for r in dependencies]
        (info / "METADATA").write_text("\n".join(meta) + "\n")
        (info / "top_level.txt").write_text(import_name + "\n")
        eps = entry_points if installed_entry_points is None else installed_entry_points
        if eps:
            body = "".join(f"{k} = {v}\n" for k, v in eps.items())
            (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{body}")
        self.sources.append(src)
        return path

    @property
    def pythonpath(self) -> list[Path]:
        return [*self.sources, self.site]

    def run(self, checks: Sequence[str], options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run `checks` on this workspace in a fresh interpreter with the packages on PYTHONPATH."""
        return run_checks_subprocess(self.root, checks, pythonpath=self.pythonpath, options=options)
