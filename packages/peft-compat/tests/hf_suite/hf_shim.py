"""pytest plugin for running Hugging Face PEFT 0.21.2's own test files (from its sdist) on peft-compat.

Loaded with `-p hf_shim` (this folder on PYTHONPATH). Options:
  --hf-mode=compat    `peft` is peft-compat: names of Hugging Face methods no installed package provides
                      become stand-ins (a class that can't be built), so the test modules import; Hugging
                      Face's private helper modules the tests import (`peft.import_utils`,
                      `peft.tuners._buffer_dict`) are loaded from the sdist's own source.
  --hf-mode=baseline  `peft` is Hugging Face PEFT; nothing is changed.
  --hf-unshipped=FILE newline-separated names of unavailable config classes (written in compat mode,
                      read in baseline mode): tests parametrized with them are deselected in both runs.
  --hf-src=DIR        the sdist's src/ (compat mode).
  --hf-sample=N       keep one test in N, chosen by a hash of its node id (the same tests on every machine and
                      in both runs): a representative subset for CI.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hf-mode", choices=("compat", "baseline"), required=True)
    parser.addoption("--hf-unshipped", required=True)
    parser.addoption("--hf-src", default=None)
    parser.addoption("--hf-sample", type=int, default=1)


def _stand_in(name: str) -> type:
    """A class named like the missing Hugging Face one: test modules may build instances at import time
    (their parameter lists), but nothing in peft-compat accepts them; tests using them are deselected."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    return type(name, (), {"__init__": __init__, "__module__": "peft._unavailable"})


def _load_hf_module(src: Path, dotted: str) -> None:
    path = src / Path(*dotted.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(dotted, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[dotted] = module
    spec.loader.exec_module(module)
    parent, _, child = dotted.rpartition(".")
    setattr(sys.modules[parent], child, module)


def _install_compat_shims(src: Path) -> list[str]:
    import peft
    import peft.tuners
    import peft.tuners.lora  # the peft-lora package
    from peft._hf_api import HF_ALL

    unavailable: list[str] = []
    for name in HF_ALL:
        try:
            getattr(peft, name)
        except AttributeError:
            setattr(peft, name, _stand_in(name))
            unavailable.append(name)
    for dotted in ("peft.import_utils", "peft.tuners._buffer_dict"):
        _load_hf_module(src, dotted)
    # names test files import from Hugging Face's LoRA submodules, absent from peft-lora
    lora_config = importlib.import_module("peft.tuners.lora.config")
    for name in ("ArrowConfig", "BdLoraConfig", "CordaConfig", "EvaConfig", "KasaConfig", "LoraGAConfig",
                 "LoftQConfig", "MontecloraConfig", "VeloraConfig", "LoraRuntimeConfig"):
        if not hasattr(lora_config, name):
            setattr(lora_config, name, _stand_in(name))
            unavailable.append(name)
    import peft.utils

    for name in ("TrainableTokensWrapper",):  # Hugging Face helpers for methods peft-core has no wrapper for
        if not hasattr(peft.utils, name):
            setattr(peft.utils, name, _stand_in(name))
    monteclora = types.ModuleType("peft.tuners.lora.monteclora")
    monteclora.MontecloraSampler = _stand_in("MontecloraSampler")
    sys.modules["peft.tuners.lora.monteclora"] = monteclora
    return sorted(set(unavailable))


# Imported at module level by Hugging Face's testing helpers but used only by tests outside the two files run
# here (Stable Diffusion pipelines, Hub datasets): stand-in modules when not installed, in both runs.
OPTIONAL_TEST_IMPORTS = ("diffusers", "datasets")


def _stand_in_getattr(module: str):
    def __getattr__(attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _stand_in(f"{module}.{attr}")

    return __getattr__


def _stub_missing_modules() -> None:
    for name in OPTIONAL_TEST_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__getattr__ = _stand_in_getattr(name)  # type: ignore[attr-defined]
            sys.modules[name] = module


def pytest_configure(config: pytest.Config) -> None:
    _stub_missing_modules()
    mode = config.getoption("--hf-mode")
    path = Path(config.getoption("--hf-unshipped"))
    if mode == "compat":
        names = _install_compat_shims(Path(config.getoption("--hf-src")))
        path.write_text("\n".join(n for n in names if n.endswith("Config")) + "\n")
    config._hf_unshipped = [n for n in path.read_text().split() if n]


def _type_names(value, depth: int = 0) -> list[str]:
    """Class names in a test's parameters, also inside the dicts / lists / tuples they hold (config kwargs
    such as `{"use_bdlora": BdLoraConfig(...)}` name a method too)."""
    if depth > 4:
        return []
    if isinstance(value, type):
        return [value.__name__]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _type_names(v, depth + 1)]
    if isinstance(value, (list, tuple, set)):
        return [n for v in value for n in _type_names(v, depth + 1)]
    return [type(value).__name__]


def _in_sample(nodeid: str, every: int) -> bool:
    return every <= 1 or int(hashlib.sha256(nodeid.encode()).hexdigest()[:8], 16) % every == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    names = config._hf_unshipped
    every = config.getoption("--hf-sample")
    pattern = re.compile(r"(?<![A-Za-z])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z])") if names else None
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        text = item.nodeid + " " + " ".join(_type_names(params))
        unshipped = pattern is not None and pattern.search(text)
        (drop if unshipped or not _in_sample(item.nodeid, every) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
