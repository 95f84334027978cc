#!/usr/bin/env python3
"""Scaffold a new method package: `uv run tools/new_method.py NAME`.

Creates packages/peft-NAME/ with a working additive low-rank method (`y = W x + (alpha/r) B A x`
on nn.Linear layers; B starts at zero so a fresh adapter is a no-op): config, layer, model,
registration, `peft.methods` entry point, conformance cases (`conformance.py`, `peft.conformance`
entry point), README (with an options table), CHANGELOG, py.typed and tests (the math, and peft-core's
conformance kit: merging, several adapters, mixed batches, save/load in a fresh interpreter ...). It passes the workspace integration suite as generated; then
replace the math with your method's.

    uv run tools/new_method.py scaled_lowrank            # packages/peft-scaled-lowrank, import peft_scaled_lowrank
    uv run tools/new_method.py NAME --root /other/workspace --description "one line"

NAME is the method name (lower case, letters, digits, `_`); its upper-case form is the `peft_type`
in adapter_config.json, and `NAME_` is the prefix of its parameter names. Nothing outside the new
folder is edited; afterwards run `uv sync --all-packages` (or just `uv run pytest packages/peft-NAME`),
which installs the package with its entry point and updates uv.lock.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*[a-z0-9]$")
ROOT = Path(__file__).resolve().parents[1]


def _names(name: str) -> dict[str, str]:
    return {
        "@@name@@": name,
        "@@dist@@": "peft-" + name.replace("_", "-"),
        "@@import@@": "peft_" + name,
        "@@Class@@": "".join(part.capitalize() for part in name.split("_")),
        "@@PEFT_TYPE@@": name.upper(),
        "@@prefix@@": name + "_",
    }


def render(text: str, names: dict[str, str]) -> str:
    for token, value in names.items():
        text = text.replace(token, value)
    return text


PYPROJECT = '''\
[project]
name = "@@dist@@"
version = "0.1.0"
description = "@@description@@"
readme = "README.md"
license = "Apache-2.0"
requires-python = ">=3.10"
dependencies = [
    "peft-core>=@@core_lower@@,<@@core_upper@@",
    "torch>=2.2",
]

[project.entry-points."peft.methods"]
@@name@@ = "@@import@@"

# peft-core's conformance kit finds the method's cases here (also in a venv without tests/)
[project.entry-points."peft.conformance"]
@@name@@ = "@@import@@.conformance:conformance"

[dependency-groups]
dev = ["pytest>=8", "transformers>=4.56"]

[tool.uv.sources]
peft-core = { workspace = true }

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/@@import@@"]

[tool.hatch.build.targets.sdist]
include = ["src", "tests", "README.md", "CHANGELOG.md"]
'''

README = '''\
# @@dist@@

@@description@@

Each adapted `nn.Linear` learns a low-rank update beside its frozen weight: `y = W x + (alpha / r) · B A x`,
with `A` (r × in) and `B` (out × r). `B` starts at zero, so a fresh adapter changes nothing. The update can be
merged into `W` after training. This package plugs the method into [peft-core](../peft-core): saving, loading,
several adapters, merging and mixed-adapter batches come from the core.

## Install

```bash
pip install @@dist@@          # or: uv add @@dist@@
```

## Example

```python
from peft_core import PeftModel, get_peft_model
from @@import@@ import @@Class@@Config

config = @@Class@@Config(r=8, alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
model = get_peft_model(base_model, config)     # only the adapter is trainable
# ... train ...
model.save_pretrained("my-adapter")            # adapter_config.json (peft_type "@@PEFT_TYPE@@") + adapter_model.safetensors
model = PeftModel.from_pretrained(fresh_base_model, "my-adapter")
merged = model.merge_and_unload()              # a plain model with the update folded in
```

## Options (`@@Class@@Config`)

| option | default | meaning |
|---|---|---|
| `r` | `8` | rank of the update |
| `alpha` | `8.0` | scaling numerator: the update is multiplied by `alpha / r` |
| `dropout` | `0.0` | dropout on the input of the adapter branch, in `[0, 1)` |
| `target_modules` | `None` | module names or dotted suffixes (list) or a regex (str); `None` uses the per-architecture default (e.g. Llama `q_proj`, `v_proj`) |
| `exclude_modules` | `None` | modules never adapted (same matching rules) |
| `modules_to_save` | `None` | modules trained in full and saved with the adapter (e.g. a classifier head) |
| `init_weights` | `True` | `True`: `B = 0` (a no-op start); `False`: random `B` (for tests) |
| `task_type` | `None` | `"CAUSAL_LM"`, `"SEQ_CLS"`, ...: picks the `PeftModelFor...` wrapper |

Supported layers: `nn.Linear`.
'''

CHANGELOG = '''\
# Changelog

All notable changes to `@@dist@@` are documented here. The format follows
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/) and the package uses
[Semantic Versioning](https://semver.org/).

## [Unreleased]

### Added
- `@@Class@@Config`, `@@Class@@Linear` and `@@Class@@Model`: an additive low-rank update on `nn.Linear` layers
  (merge/unmerge, several adapters, mixed-adapter batches), registered as `@@name@@` with a `peft.methods` entry point.
'''

INIT = '''\
"""@@dist@@: @@description@@

Importing the package registers the method `@@name@@` (peft_type `@@PEFT_TYPE@@`) with peft-core.
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import @@Class@@Config
from .layer import @@Class@@Linear
from .model import @@Class@@Model

__all__ = ["@@Class@@Config", "@@Class@@Linear", "@@Class@@Model"]

register_peft_method(
    name="@@name@@",
    config_cls=@@Class@@Config,
    model_cls=@@Class@@Model,
    default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)
'''

CONFIG = '''\
"""`@@Class@@Config`: the fields of adapter_config.json for `@@name@@` adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class @@Class@@Config(PeftConfig):
    """An additive low-rank update `(alpha / r) · B A` on each targeted nn.Linear."""

    peft_type: str = "@@PEFT_TYPE@@"
    r: int = field(default=8, metadata={"help": "Rank of the update."})
    alpha: float = field(default=8.0, metadata={"help": "Scaling numerator: the update is multiplied by alpha / r."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names or suffixes (list), or a regex (str); None: the model's default."}
    )
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules never adapted."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (a no-op start); False: random B."})

    def __post_init__(self) -> None:
        super().__post_init__()  # checks r > 0 and 0 <= dropout < 1
        if self.alpha <= 0:
            raise ConfigError(f"@@Class@@Config.alpha must be positive, got {self.alpha!r}")
'''

LAYER = '''\
"""`@@Class@@Linear`: an nn.Linear plus one low-rank update per adapter."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core import BaseTunerLayer, current_batch_plan


class @@Class@@Linear(BaseTunerLayer):
    """`y = base(x) + sum over active adapters of scaling · B(A(dropout(x)))`."""

    adapter_layer_names = ("@@prefix@@A", "@@prefix@@B")
    other_param_names = ("@@prefix@@r", "@@prefix@@scaling", "@@prefix@@dropout")
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        self.@@prefix@@A = nn.ModuleDict()
        self.@@prefix@@B = nn.ModuleDict()
        self.@@prefix@@dropout = nn.ModuleDict()
        self.@@prefix@@r: dict[str, int] = {}
        self.@@prefix@@scaling: dict[str, float] = {}

    def update_layer(self, adapter_name: str, r: int, alpha: float, dropout: float, init_weights: bool) -> None:
        base = self.get_base_layer()
        self.@@prefix@@r[adapter_name] = r
        self.@@prefix@@scaling[adapter_name] = alpha / r
        self.@@prefix@@A[adapter_name] = nn.Linear(base.in_features, r, bias=False)
        self.@@prefix@@B[adapter_name] = nn.Linear(r, base.out_features, bias=False)
        self.@@prefix@@dropout[adapter_name] = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        nn.init.kaiming_uniform_(self.@@prefix@@A[adapter_name].weight, a=5**0.5)
        if init_weights:
            nn.init.zeros_(self.@@prefix@@B[adapter_name].weight)
        else:
            nn.init.normal_(self.@@prefix@@B[adapter_name].weight, std=0.1)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        a = self.@@prefix@@A[adapter_name].weight
        b = self.@@prefix@@B[adapter_name].weight
        return (b @ a) * self.@@prefix@@scaling[adapter_name]

    def _delta(self, x: torch.Tensor, name: str) -> torch.Tensor:
        a, b = self.@@prefix@@A[name], self.@@prefix@@B[name]
        x = x.to(a.weight.dtype)
        return b(a(self.@@prefix@@dropout[name](x))) * self.@@prefix@@scaling[name]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is not None:  # a mixed-adapter batch: each group of rows gets its own adapter
            result = result.clone()
            for name in plan.adapter_groups():
                if name in self.@@prefix@@A:
                    rows = plan.rows(name, x.device)
                    result[rows] = result[rows] + self._delta(x[rows], name).to(result.dtype)
            return result
        for name in self.active_adapters:
            if name in self.@@prefix@@A:
                result = result + self._delta(x, name).to(result.dtype)
        return result
'''

MODEL = '''\
"""`@@Class@@Model`: puts a `@@Class@@Linear` around every targeted nn.Linear."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner

from .config import @@Class@@Config
from .layer import @@Class@@Linear


class @@Class@@Model(BaseTuner):
    prefix = "@@prefix@@"

    def _create_and_replace(
        self,
        config: @@Class@@Config,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        kwargs = dict(r=config.r, alpha=config.alpha, dropout=config.dropout, init_weights=config.init_weights)
        if isinstance(target, @@Class@@Linear):  # a second adapter on an adapted layer
            target.update_layer(adapter_name, **kwargs)
            return
        if not isinstance(target, nn.Linear):
            raise ValueError(
                f"Target module {current_key!r} is a {type(target).__name__}; @@name@@ supports nn.Linear only."
            )
        layer = @@Class@@Linear(target)
        layer.update_layer(adapter_name, **kwargs)
        setattr(parent, target_name, layer)
'''

CONFORMANCE = '''\
"""The conformance cases of `@@name@@`: what peft-core's kit (`peft_core.testing`) checks on this method.

Shipped in the package (not in tests/) so the kit also runs against the installed wheel:
`python -m peft_core.testing @@name@@`. Found through the `peft.conformance` entry point.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, models

from .config import @@Class@@Config


def conformance() -> Conformance:
    return Conformance(
        method="@@name@@",
        cases=(
            # a plain MLP (nn.Linear layers of several shapes); a second adapter on one of them
            Case(
                "mlp",
                models.MLP,
                lambda: @@Class@@Config(r=4, alpha=8.0, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: @@Class@@Config(r=2, target_modules=["lin1"]),
            ),
            # a tiny Llama with the default targets (skipped where transformers is not installed)
            Case("llama", models.LLAMA, lambda: @@Class@@Config(r=4, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},  # a fresh adapter with init_weights=False changes the output
        bad_values=({"alpha": 0.0},),  # each must raise peft_core.ConfigError
    )
'''

CONFORMANCE_TESTS = '''\
"""peft-core's conformance kit on `@@name@@`: every check on every case of `@@import@@.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class Test@@Class@@Conformance(ConformanceTests):
    method = "@@name@@"
'''

TESTS = '''\
"""Tests of what is specific to @@dist@@ (the math); the conformance kit checks the rest
(merging, several adapters, mixed batches, save/load, dtypes ...): see test_conformance.py."""

from __future__ import annotations

import torch
from peft_core import get_peft_method, get_peft_model
from peft_core.testing import models

import @@import@@
from @@import@@ import @@Class@@Config, @@Class@@Linear

torch.set_num_threads(1)


def test_registered_with_its_entry_point():
    from importlib.metadata import entry_points

    method = get_peft_method("@@name@@")
    assert method.config_cls is @@Class@@Config and method.prefix == "@@prefix@@"
    assert any(ep.name == "@@name@@" for ep in entry_points(group="peft.methods"))
    assert @@import@@.__name__ == "@@import@@"


def test_forward_matches_an_independent_computation():
    base = models.MLP.build()
    model = get_peft_model(models.MLP.build(), @@Class@@Config(r=2, alpha=6.0, target_modules=["lin0"], init_weights=False))
    layer = model.base_model.model.lin0
    assert isinstance(layer, @@Class@@Linear)
    a, b = layer.@@prefix@@A["default"].weight, layer.@@prefix@@B["default"].weight
    w = base.lin0.weight + 3.0 * (b @ a)  # alpha / r = 3
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(layer(x), torch.nn.functional.linear(x, w, base.lin0.bias), atol=1e-6)
'''


def files_for(names: dict[str, str]) -> dict[str, str]:
    imp = names["@@import@@"]
    return {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        "CHANGELOG.md": CHANGELOG,
        f"src/{imp}/__init__.py": INIT,
        f"src/{imp}/config.py": CONFIG,
        f"src/{imp}/layer.py": LAYER,
        f"src/{imp}/model.py": MODEL,
        f"src/{imp}/conformance.py": CONFORMANCE,
        f"src/{imp}/py.typed": "",
        f"tests/test_{names['@@name@@']}.py": TESTS,
        "tests/test_conformance.py": CONFORMANCE_TESTS,
    }


def _core_range(root: Path) -> tuple[str, str]:
    """peft-core's version range for the new package: >=X.Y,<X.(Y+1) (0.x) from the workspace's core."""
    text = (root / "packages" / "peft-core" / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"(\d+)\.(\d+)', text, re.MULTILINE)
    if match is None:
        return "0.1", "0.2"
    major, minor = int(match.group(1)), int(match.group(2))
    if major == 0:
        return f"0.{minor}", f"0.{minor + 1}"
    return f"{major}.{minor}", f"{major + 1}"


def _taken(root: Path, name: str, dist: str) -> str | None:
    """Why `name` can't be used in the workspace at `root` (None if it can)."""
    if (root / "packages" / dist).exists():
        return f"packages/{dist} already exists"
    prefix = name + "_"
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        text = pyproject.read_text(encoding="utf-8")
        if re.search(rf'^{re.escape(name)}\s*=', text, re.MULTILINE) and "peft.methods" in text:
            return f"{pyproject.parent.name} already provides a method named {name!r}"
        for other in re.findall(r'^\s*prefix\s*=\s*"([^"]+)"', _sources(pyproject.parent), re.MULTILINE):
            if other.startswith(prefix) or prefix.startswith(other):
                return (
                    f"the parameter prefix {prefix!r} overlaps {other!r} of {pyproject.parent.name}; "
                    "saved keys could be mistaken for each other: choose another name"
                )
    return None


def _sources(package: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(package.glob("src/*/*.py")))


def scaffold(name: str, root: Path = ROOT, description: str | None = None) -> Path:
    """Write packages/peft-NAME/ under `root`; returns its path. Raises ValueError for a bad or taken name."""
    if not NAME_RE.match(name) or "__" in name:
        raise ValueError(
            f"invalid method name {name!r}: use lower-case letters, digits and single underscores, starting with a "
            "letter (e.g. 'scaled_lowrank')"
        )
    names = _names(name)
    root = Path(root)
    if not (root / "packages" / "peft-core" / "pyproject.toml").is_file():
        raise ValueError(f"{str(root)!r} is not the workspace root (no packages/peft-core/pyproject.toml)")
    problem = _taken(root, name, names["@@dist@@"])
    if problem:
        raise ValueError(problem)
    lower, upper = _core_range(root)
    names["@@description@@"] = description or f"The {name} method (an additive low-rank update) for peft-core."
    names["@@core_lower@@"], names["@@core_upper@@"] = lower, upper
    target = root / "packages" / names["@@dist@@"]
    # README, CHANGELOG and pyproject first: a member folder without them breaks `uv run` for everyone.
    for rel, text in files_for(names).items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(text, names), encoding="utf-8")
    return target


# docs/write-a-method.md shows the files generated for this name; `--sync-docs` rewrites them there.
TUTORIAL_NAME = "scaled_lowrank"
TUTORIAL = Path("docs") / "write-a-method.md"
_LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown"}
_SCAFFOLD_BLOCK = re.compile(r"<!-- scaffold: (\S+) -->\n(````[^\n]*\n.*?\n````\n)?", re.DOTALL)


def tutorial_files(root: Path = ROOT) -> dict[str, str]:
    """The files the scaffolder writes for the tutorial's method, as the tutorial shows them."""
    names = _names(TUTORIAL_NAME)
    names["@@description@@"] = f"The {TUTORIAL_NAME} method (an additive low-rank update) for peft-core."
    names["@@core_lower@@"], names["@@core_upper@@"] = _core_range(root)
    return {rel: render(text, names) for rel, text in files_for(names).items()}


def synced_tutorial(text: str, files: dict[str, str]) -> str:
    """`text` with the fenced block after each `<!-- scaffold: REL -->` marker set to file REL."""
    dist = _names(TUTORIAL_NAME)["@@dist@@"]

    def block(match: re.Match) -> str:
        rel = match.group(1)
        if rel not in files:
            raise ValueError(f"{TUTORIAL}: the scaffolder writes no file {rel!r}; it writes {sorted(files)}")
        lang = _LANGUAGES.get(Path(rel).suffix, "text")
        body = files[rel].rstrip("\n")
        return f'<!-- scaffold: {rel} -->\n````{lang} title="packages/{dist}/{rel}"\n{body}\n````\n'

    return _SCAFFOLD_BLOCK.sub(block, text)


def sync_docs(root: Path = ROOT) -> bool:
    """Rewrite the tutorial's file listings from the scaffolder; True if the page changed."""
    path = root / TUTORIAL
    text = path.read_text(encoding="utf-8")
    new = synced_tutorial(text, tutorial_files(root))
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="new_method.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", help="method name, e.g. scaled_lowrank (peft_type SCALED_LOWRANK)")
    parser.add_argument(
        "--sync-docs", action="store_true", help=f"rewrite the generated files shown in {TUTORIAL} and exit"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="workspace root (default: this checkout)")
    parser.add_argument("--description", default=None, help="one-line description for the README and pyproject")
    args = parser.parse_args(argv)
    if args.sync_docs:
        changed = sync_docs(args.root)
        print(f"{TUTORIAL}: {'updated' if changed else 'already in sync'}")
        return 0
    if not args.name:
        parser.error("give a method NAME (or --sync-docs)")
    try:
        path = scaffold(args.name, args.root, args.description)
    except ValueError as exc:
        print(f"new_method.py: error: {exc}", file=sys.stderr)
        return 1
    rel = path.relative_to(args.root.resolve()) if path.is_relative_to(args.root.resolve()) else path
    print(f"created {rel}/ (method {args.name!r}, peft_type {args.name.upper()!r}, prefix {args.name + '_'!r})")
    print("next:")
    print(f"  uv run pytest {rel}   # installs it with its entry point (updates uv.lock), runs its tests")
    print("  uv run pytest tests   # the workspace integration suite")
    print(f"  then replace the math in {rel}/src/{'peft_' + args.name}/layer.py with your method's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
