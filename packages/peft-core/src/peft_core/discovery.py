"""Find installed method packages through the `peft.methods` entry-point group.

Each method package declares `[project.entry-points."peft.methods"] <name> = "<import package>"`.
Loading an adapter whose `peft_type` is not registered imports that package, whose `__init__`
registers the method. Nothing is imported until a method is actually needed.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib.metadata import Distribution, EntryPoint, distributions, entry_points

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
    """What to install for a method that no installed package provides, as a sentence.

    The name comes from an adapter file, which is untrusted: a package name built from it (`peft-<name>`)
    could send a user to a squatted package, so the hint names a distribution only when the installed
    metadata knows it (a distribution that is installed but lacks the method's entry point)."""
    known = distributions_lacking_entry_point(name)
    if known:
        return (
            f"{_describe(known[0])} is installed but declares no {ENTRY_POINT_GROUP!r} entry point for {name.lower()!r}: "
            f"reinstall it (entry points are read from the installed metadata) or ask its authors to add one"
        )
    return (
        f"install the package that provides the method {name.lower()!r} (the adapter's README or model card should "
        f"name it; peft-core does not guess package names from adapter files)"
    )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _depends_on_core(dist: Distribution) -> bool:
    return any(_canonical(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]) == "peft-core" for req in dist.requires or ())


def _describe(dist: Distribution) -> str:
    return f"{dist.metadata['Name']} {dist.version}"


def distributions_lacking_entry_point(name: str) -> list[Distribution]:
    """Installed distributions that depend on peft-core and look like the provider of method `name` (their
    name is `<name>` or ends in `-<name>`) but advertise no `peft.methods` entry point for it."""
    wanted = _canonical(name)
    found = []
    for dist in distributions():
        dist_name = _canonical(dist.metadata["Name"] or "")
        if not (dist_name == wanted or dist_name.endswith("-" + wanted)) or not _depends_on_core(dist):
            continue
        if not any(ep.group == ENTRY_POINT_GROUP and ep.name.lower() == name.lower() for ep in dist.entry_points):
            found.append(dist)
    return found


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
            f"Unknown peft_type {name.upper()!r}: no installed package provides the method {name!r}; "
            f"{install_hint(name)}. Installed methods: {', '.join(installed) or 'none'}."
        )
    for ep in candidates:
        load_entry_point(ep, f"provides peft_type {name.upper()!r}")  # importing the package registers its methods
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


def load_entry_point(ep: EntryPoint, role: str) -> object:
    """`ep.load()`, with a `RegistrationError` that tells an entry point naming a module or attribute that is
    not there (a broken or stale install) from a failing import of a module that is."""
    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
    where = f"Entry point {ep.name!r} = {ep.value!r} (group {ep.group!r}, distribution {dist}), which {role},"
    module = ep.module
    try:
        obj: object = importlib.import_module(module)
    except PeftError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise RegistrationError(
                f"{where} names the module {module!r}, which is not installed. The distribution's metadata does not "
                f"match its files: reinstall it, or fix the entry point in its pyproject.toml and rebuild."
            ) from exc
        if exc.name is not None and exc.name.startswith(module.split(".")[0] + "."):
            raise RegistrationError(
                f"{where} could not be imported: its own module {exc.name!r} is missing, so the installed package is "
                f"incomplete. Reinstall {dist}; if you build it, check that the wheel includes every module."
            ) from exc
        raise RegistrationError(
            f"{where} could not be imported: its module imports {exc.name!r}, which is not installed. Install the "
            f"dependencies of {dist} (a package must declare every import in its dependencies)."
        ) from exc
    except Exception as exc:
        raise RegistrationError(
            f"{where} failed to import: {type(exc).__name__}: {exc}. Reinstall {dist} and its dependencies."
        ) from exc
    for part in ep.attr.split(".") if ep.attr else ():
        if not hasattr(obj, part):
            raise RegistrationError(
                f"{where} names {ep.attr!r}, which module {module!r} does not define. Fix the entry point in its "
                f"pyproject.toml (`module` or `module:attribute`) and reinstall."
            )
        obj = getattr(obj, part)
    return obj


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
