"""Find installed method packages through the `peft.methods` entry-point group.

Each method package declares `[project.entry-points."peft.methods"] <name> = "<import package>"`.
Loading an adapter whose `peft_type` is not registered imports that package, whose `__init__`
registers the method. Nothing is imported until a method is actually needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from .errors import PeftError, RegistrationError, UnknownPeftTypeError
from .registry import PeftMethod, registered_methods

ENTRY_POINT_GROUP = "peft.methods"


@dataclass(frozen=True)
class InstalledMethod:
    """A method that an installed distribution advertises."""

    name: str
    distribution: str | None
    version: str | None
    entry_point: str
    registered: bool


def _method_entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def install_hint(name: str) -> str:
    return f"peft-{name.lower().replace('_', '-')}"


def load_method(name: str) -> PeftMethod:
    """Import the package that provides `name` and return its registration.

    Safe to call from several threads at once, also while other threads import method packages
    directly: the import itself runs outside the registry lock (Python's per-module import lock
    makes concurrent imports of one package wait for a single execution of its `__init__`), and
    the registry is only locked to read or change it. Holding the registry lock around the import
    would deadlock against a thread that is inside a package's `__init__` waiting to register.
    """
    name = name.lower()
    method = registered_methods().get(name)
    if method is not None:
        return method
    candidates = [ep for ep in _method_entry_points() if ep.name.lower() == name]
    if not candidates:
        installed = sorted({ep.name for ep in _method_entry_points()} | set(registered_methods()))
        raise UnknownPeftTypeError(
            f"Unknown peft_type {name.upper()!r}: no installed package provides the method {name!r}. "
            f"Install it with `pip install {install_hint(name)}` (or `uv add {install_hint(name)}`). "
            f"Installed methods: {', '.join(installed) or 'none'}."
        )
    for ep in candidates:
        try:
            ep.load()  # importing the package registers its methods
        except PeftError:
            raise
        except Exception as exc:
            dist = ep.dist.name if ep.dist is not None else "its distribution"
            raise RegistrationError(
                f"Importing {ep.value!r}, which provides peft_type {name.upper()!r} (entry point {ep.name!r}), failed: "
                f"{type(exc).__name__}: {exc}. Reinstall {dist} and its dependencies."
            ) from exc
    method = registered_methods().get(name)
    if method is None:
        ep = candidates[0]
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        raise RegistrationError(
            f"Entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP!r}, distribution {dist}) was "
            f"imported but registered no method named {name!r} (registered now: {sorted(registered_methods())}). "
            f"Fix the package: its __init__ must call register_peft_method(name={name!r}, ...), or the entry "
            f"point must point at the module that does."
        )
    return method


def installed_methods() -> list[InstalledMethod]:
    """Every method advertised by an installed distribution, plus methods registered without one."""
    seen: dict[str, InstalledMethod] = {}
    registered = registered_methods()
    for ep in _method_entry_points():
        dist = ep.dist
        seen.setdefault(
            ep.name,
            InstalledMethod(
                name=ep.name,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
                entry_point=ep.value,
                registered=ep.name in registered,
            ),
        )
    for name, method in registered.items():
        if name not in seen:
            seen[name] = InstalledMethod(name, None, None, method.module, True)
    return sorted(seen.values(), key=lambda m: m.name)


def load_all_methods() -> dict[str, PeftMethod]:
    """Import every installed method package; returns the registry afterwards."""
    for ep in _method_entry_points():
        load_method(ep.name)
    return registered_methods()
