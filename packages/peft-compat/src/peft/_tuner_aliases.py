"""`peft.tuners.<method>` (and its submodules) are the installed method package (`peft_<method>`).

Code written for Hugging Face PEFT imports method internals by path, e.g. `from peft.tuners.lora import
LoraLayer`. An import hook, placed after the standard finders (so peft-compat's own modules such as
`peft.tuners.tuners_utils` win), answers those paths with the method package that registered the
method under that name; the module objects are shared, not copied.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

from ._hf_api import HF_PEFT_TYPES, HF_PEFT_VERSION

PREFIX = "peft.tuners."


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target
        self.target_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        self.target_spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # already executed under its own name; the import system just set the alias spec on it: give the module
        # its own back (importlib.reload, find_spec and pickling by module name keep working)
        module.__spec__ = self.target_spec


class TunerAliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PREFIX):
            return None
        method, *rest = fullname[len(PREFIX) :].split(".")
        if not rest and _own_module(fullname, path):
            return None
        package = _method_package(method)
        if package is None:
            if method.upper() in HF_PEFT_TYPES:
                raise ModuleNotFoundError(
                    f"No module named {fullname!r}: {method!r} is a Hugging Face PEFT {HF_PEFT_VERSION} method and no "
                    f"installed package provides it (`pip install peft-{method.replace('_', '-')}` if peft-modular has "
                    f"it; see docs/migrating.md).",
                    name=fullname,
                )
            return None
        target_name = ".".join([package, *rest])
        try:
            found = importlib.util.find_spec(target_name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(target_name), is_package=found.submodule_search_locations is not None
        )


def _own_module(fullname: str, path: object) -> bool:
    """peft-compat ships `fullname` itself (e.g. `peft.tuners.tuners_utils`)."""
    return importlib.machinery.PathFinder.find_spec(fullname, path) is not None  # type: ignore[arg-type]


def _method_package(method: str) -> str | None:
    if not method.isidentifier() or method.startswith("_"):
        return None
    from peft_core import get_peft_method

    try:
        return get_peft_method(method).module
    except KeyError:
        return None


def install_tuner_aliases() -> None:
    if not any(isinstance(f, TunerAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, TunerAliasFinder())
