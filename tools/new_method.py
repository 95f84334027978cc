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
    python tools/new_method.py NAME --outside ~/src      # ~/src/peft-NAME: a project of its own (no workspace)

NAME is the method name (lower case, letters, digits, `_`); its upper-case form is the `peft_type`
in adapter_config.json, and `NAME_` is the prefix of its parameter names. Nothing outside the new
folder is edited; afterwards run `uv sync --all-packages` (or just `uv run pytest packages/peft-NAME`),
which installs the package with its entry point and updates uv.lock.

With `--outside DIR` the package is a project of its own, for publishing outside this workspace: it depends
on a released peft-core by version range (`--core-version`, default this checkout's) and has no workspace
source (docs/publish-a-method.md). The script needs only the standard library.
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

@@uv_sources@@[build-system]
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
merged into `W` after training. This package plugs the method into @@core_link@@: saving, loading,
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

from .config import @@Class@@Config
from .layer import @@Class@@Linear
from .model import @@Class@@Model

__all__ = ["@@Class@@Config", "@@Class@@Linear", "@@Class@@Model"]

# config class, prefix and default targets are class attributes of @@Class@@Model (see model.py)
register_peft_method("@@name@@", @@Class@@Model, plugin_api=">=1,<2")
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

from peft_core import BaseTunerLayer
from peft_core.tuners.layer_containers import dropout_module


class @@Class@@Linear(BaseTunerLayer):
    """`y = base(x) + sum over active adapters of scaling · B(A(dropout(x)))`."""

    adapter_layer_names = ("@@prefix@@A", "@@prefix@@B")
    other_param_names = ("@@prefix@@r", "@@prefix@@scaling", "@@prefix@@dropout")
    # BaseTunerLayer creates an empty container per name above (a ParameterDict / dict unless typed here)
    container_types = {
        "@@prefix@@A": nn.ModuleDict,
        "@@prefix@@B": nn.ModuleDict,
        "@@prefix@@dropout": nn.ModuleDict,
    }
    features_from_base = True  # and sets in_features / out_features from the nn.Linear
    supports_mixed_batch = True

    def update_layer(self, adapter_name: str, r: int, alpha: float, dropout: float, init_weights: bool) -> None:
        self.@@prefix@@r[adapter_name] = r
        self.@@prefix@@scaling[adapter_name] = alpha / r
        self.@@prefix@@A[adapter_name] = nn.Linear(self.in_features, r, bias=False)
        self.@@prefix@@B[adapter_name] = nn.Linear(r, self.out_features, bias=False)
        self.@@prefix@@dropout[adapter_name] = dropout_module(dropout)
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
        # the base layer alone while disabled or merged; else base(x) plus each active adapter's `_delta`
        # (in a mixed-adapter batch, each group of rows gets its own adapter's)
        held = self.@@prefix@@A
        return self.additive_forward(x, args, kwargs, held, self._delta, "a @@Class@@ layer", cast_to="base")
'''

MODEL = '''\
"""`@@Class@@Model`: puts a `@@Class@@Linear` around every targeted nn.Linear."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import @@Class@@Config
from .layer import @@Class@@Linear


class @@Class@@Model(BaseTuner):
    # What register_peft_method reads: the parameter prefix, the config class, the targets used when a
    # config leaves target_modules unset (model_type -> module names).
    prefix = "@@prefix@@"
    config_cls = @@Class@@Config
    default_target_modules = QUERY_VALUE_TARGETS

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
"""The conformance cases of `@@name@@`: what peft-core's kit checks on this method (`python -m peft_core.testing
@@name@@`). Shipped in the package, not in tests/, so the kit also runs against the installed wheel."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import @@Class@@Config


def conformance() -> Conformance:
    return Conformance.of(
        @@Class@@Config,
        # a plain MLP (targets: its lin0 / lin1 / lin2); a second adapter on one of them
        on(models.MLP, r=4, alpha=8.0, second=dict(r=2, target_modules=["lin1"])),
        # a tiny Llama (task CAUSAL_LM) with the method's default targets; skipped where transformers is missing
        on(models.LLAMA, r=4, target_modules=None),
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


def _core_range(version: str) -> tuple[str, str]:
    """peft-core's version range for a new package built against core `version`: >=X.Y,<X.(Y+1) while
    0.x (a minor release may break), >=X.Y,<(X+1) from 1.0."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"peft-core version {version!r} is not of the form X.Y or X.Y.Z")
    major, minor = int(match.group(1)), int(match.group(2))
    if major == 0:
        return f"0.{minor}", f"0.{minor + 1}"
    return f"{major}.{minor}", f"{major + 1}"


def _workspace_core_version(root: Path) -> str | None:
    """The version in the workspace's packages/peft-core/pyproject.toml (None outside a workspace)."""
    try:
        text = (root / "packages" / "peft-core" / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else None


def _installed_core_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("peft-core")
    except PackageNotFoundError:
        return None


def prefixes_conflict(prefix: str, other: str) -> bool:
    """The registry's rule (peft_core.registry.prefixes_conflict, restated here because this script runs
    without peft-core): two methods' prefixes conflict when one starts with the other, since a parameter
    named `<other>A` would then start with both. A prefix inside another (`lora_` in `delora_`) is fine."""
    return prefix.startswith(other) or other.startswith(prefix)


def _taken(root: Path, name: str, dist: str) -> str | None:
    """Why `name` can't be used next to the method packages under `root`/packages (None if it can)."""
    if (root / "packages" / dist).exists():
        return f"packages/{dist} already exists"
    prefix = name + "_"
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        text = pyproject.read_text(encoding="utf-8")
        if re.search(rf'^{re.escape(name)}\s*=', text, re.MULTILINE) and "peft.methods" in text:
            return f"{pyproject.parent.name} already provides a method named {name!r}"
        for other in re.findall(r'^\s*prefix\s*=\s*"([^"]+)"', _sources(pyproject.parent), re.MULTILINE):
            if prefixes_conflict(prefix, other):
                return (
                    f"the parameter prefix {prefix!r} overlaps {other!r} of {pyproject.parent.name} (one starts with "
                    "the other, so a parameter name could belong to either): peft-core would refuse to register both; "
                    "choose another name"
                )
    return None


def _sources(package: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(package.glob("src/*/*.py")))


def _check_name(name: str) -> None:
    if not NAME_RE.match(name) or "__" in name:
        raise ValueError(
            f"invalid method name {name!r}: use lower-case letters, digits and single underscores, starting with a "
            "letter (e.g. 'scaled_lowrank')"
        )


def _rendered(name: str, description: str | None, core_version: str, *, outside: bool) -> dict[str, str]:
    """Every file of the new package (relative path -> text)."""
    names = _names(name)
    lower, upper = _core_range(core_version)
    names["@@description@@"] = description or f"The {name} method (an additive low-rank update) for peft-core."
    names["@@core_lower@@"], names["@@core_upper@@"] = lower, upper
    if outside:  # a project of its own: peft-core comes from the package index (or a wheel), by its range
        names["@@uv_sources@@"] = ""
        names["@@core_link@@"] = "peft-core"
    else:  # a workspace member: uv takes peft-core from the workspace
        names["@@uv_sources@@"] = "[tool.uv.sources]\npeft-core = { workspace = true }\n\n"
        names["@@core_link@@"] = "[peft-core](../peft-core)"
    return {rel: render(text, names) for rel, text in files_for(names).items()}


def _write(target: Path, files: dict[str, str]) -> Path:
    # README, CHANGELOG and pyproject first: a member folder without them breaks `uv run` for everyone.
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


def scaffold(name: str, root: Path = ROOT, description: str | None = None) -> Path:
    """Write packages/peft-NAME/ under the workspace `root`; returns its path. Raises ValueError for a bad or
    taken name."""
    _check_name(name)
    root = Path(root)
    core_version = _workspace_core_version(root)
    if core_version is None:
        raise ValueError(
            f"{str(root)!r} is not the workspace root (no packages/peft-core/pyproject.toml); to create a package "
            "outside a workspace use --outside DIR"
        )
    dist = _names(name)["@@dist@@"]
    problem = _taken(root, name, dist)
    if problem:
        raise ValueError(problem)
    return _write(root / "packages" / dist, _rendered(name, description, core_version, outside=False))


def scaffold_outside(
    name: str, dest: Path, description: str | None = None, core_version: str | None = None, root: Path = ROOT
) -> Path:
    """Write DEST/peft-NAME/, a project of its own that depends on a released peft-core by version range (no
    workspace source); returns its path. `core_version` defaults to this checkout's peft-core, else the installed
    one. Names taken by the method packages of this checkout (if any) are refused as in a workspace."""
    _check_name(name)
    dest = Path(dest).resolve()
    root = Path(root).resolve()
    if (root / "packages").is_dir() and dest.is_relative_to(root):
        raise ValueError(
            f"{str(dest)!r} is inside the workspace {str(root)!r}: a package there belongs to the workspace; run "
            "without --outside to add a workspace member, or choose a folder outside it"
        )
    core_version = core_version or _workspace_core_version(root) or _installed_core_version()
    if core_version is None:
        raise ValueError("no peft-core version to depend on: pass --core-version X.Y.Z (the release you build against)")
    dist = _names(name)["@@dist@@"]
    target = dest / dist
    if target.exists():
        raise ValueError(f"{target} already exists")
    if (root / "packages").is_dir():
        problem = _taken(root, name, dist)
        if problem:
            raise ValueError(problem)
    return _write(target, _rendered(name, description, core_version, outside=True))


# The docs show the files generated for this name; `--sync-docs` rewrites them there: the tutorial a workspace
# member's, the publishing page a package's of its own (only the files that differ).
TUTORIAL_NAME = "scaled_lowrank"
TUTORIAL = Path("docs") / "write-a-method.md"
PUBLISHING = Path("docs") / "publish-a-method.md"
_LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown"}
_SCAFFOLD_BLOCK = re.compile(r"<!-- scaffold: (\S+) -->\n(````[^\n]*\n.*?\n````\n)?", re.DOTALL)


def tutorial_files(root: Path = ROOT, *, outside: bool = False) -> dict[str, str]:
    """The files the scaffolder writes for the tutorial's method, as the docs show them."""
    version = _workspace_core_version(root) or "0.1.0"
    return _rendered(TUTORIAL_NAME, None, version, outside=outside)


def synced_tutorial(text: str, files: dict[str, str], *, outside: bool = False) -> str:
    """`text` with the fenced block after each `<!-- scaffold: REL -->` marker set to file REL."""
    dist = _names(TUTORIAL_NAME)["@@dist@@"]
    where = dist if outside else f"packages/{dist}"

    def block(match: re.Match) -> str:
        rel = match.group(1)
        if rel not in files:
            raise ValueError(f"the scaffolder writes no file {rel!r}; it writes {sorted(files)}")
        lang = _LANGUAGES.get(Path(rel).suffix, "text")
        body = files[rel].rstrip("\n")
        return f'<!-- scaffold: {rel} -->\n````{lang} title="{where}/{rel}"\n{body}\n````\n'

    return _SCAFFOLD_BLOCK.sub(block, text)


def sync_docs(root: Path = ROOT) -> list[Path]:
    """Rewrite the docs' file listings from the scaffolder; returns the pages that changed."""
    changed = []
    for page, outside in ((TUTORIAL, False), (PUBLISHING, True)):
        path = root / page
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = synced_tutorial(text, tutorial_files(root, outside=outside), outside=outside)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="new_method.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", help="method name, e.g. scaled_lowrank (peft_type SCALED_LOWRANK)")
    parser.add_argument(
        "--sync-docs", action="store_true", help=f"rewrite the generated files shown in {TUTORIAL} and {PUBLISHING}"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="workspace root (default: this checkout)")
    parser.add_argument(
        "--outside", type=Path, default=None, metavar="DIR",
        help="create DIR/peft-NAME as a project of its own (a released peft-core by version range, no workspace)",
    )
    parser.add_argument(
        "--core-version", default=None, metavar="X.Y.Z",
        help="with --outside: the peft-core release to build against (default: this checkout's, else the installed)",
    )
    parser.add_argument("--description", default=None, help="one-line description for the README and pyproject")
    args = parser.parse_args(argv)
    if args.sync_docs:
        changed = sync_docs(args.root)
        print(f"updated {', '.join(map(str, changed))}" if changed else "docs already in sync")
        return 0
    if not args.name:
        parser.error("give a method NAME (or --sync-docs)")
    if args.core_version and args.outside is None:
        parser.error("--core-version needs --outside (a workspace member uses the workspace's peft-core)")
    try:
        if args.outside is not None:
            path = scaffold_outside(args.name, args.outside, args.description, args.core_version, args.root)
        else:
            path = scaffold(args.name, args.root, args.description)
    except ValueError as exc:
        print(f"new_method.py: error: {exc}", file=sys.stderr)
        return 1
    imp = "peft_" + args.name
    if args.outside is not None:
        print(f"created {path}/ (method {args.name!r}, peft_type {args.name.upper()!r}, prefix {args.name + '_'!r})")
        print("next (see docs/publish-a-method.md):")
        print(f"  cd {path}")
        print("  uv run pytest                     # peft-core from your package index, the kit included")
        print(f"  uv run python -m peft_core.testing {args.name}")
        print(f"  then replace the math in src/{imp}/layer.py with your method's; `uv build` makes the wheel")
        return 0
    rel = path.relative_to(args.root.resolve()) if path.is_relative_to(args.root.resolve()) else path
    print(f"created {rel}/ (method {args.name!r}, peft_type {args.name.upper()!r}, prefix {args.name + '_'!r})")
    print("next:")
    print(f"  uv run pytest {rel}   # installs it with its entry point (updates uv.lock), runs its tests")
    print("  uv run pytest tests   # the workspace integration suite")
    print(f"  then replace the math in {rel}/src/{imp}/layer.py with your method's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
