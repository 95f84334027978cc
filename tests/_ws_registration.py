"""Check 3: registration (one `register_peft_method` per method, entry points, names and prefixes, import
order independence)."""

from __future__ import annotations

import importlib
import itertools
import random
import sys
from typing import Any

from _ws_imports import ImportGraph
from _ws_jobs import _short_error, job, run_fresh
from _ws_layering import _declares
from _ws_model import (
    CORE_DIST,
    CORE_IMPORT,
    ENTRY_POINT_GROUP,
    Package,
    Problem,
    Workspace,
    normalize,
)

# --------------------------------------------------------------------------------------------------
# Check 3: registration
# --------------------------------------------------------------------------------------------------


def _describe_method(method: Any) -> dict[str, Any]:
    def qual(cls: type) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    return {
        "config": qual(method.config_cls),
        "model": qual(method.model_cls),
        "prefix": method.prefix,
        "shares_prefix_with": method.shares_prefix_with,
        "module": method.module,
    }


@job
def registration_probe(
    modules: list[str], attrs: dict[str, str] | None = None, load_all: bool = False, load_names: list[str] | None = None
) -> dict[str, Any]:
    """Import peft_core, then `modules` in order; record each register_peft_method call and the registry."""
    import peft_core
    import peft_core.registry as registry

    calls: list[dict[str, Any]] = []
    original = registry.register_peft_method

    def recording(*args: Any, **kwargs: Any) -> Any:  # the short form passes name and model class by position
        frame = sys._getframe(1)
        # attribute the call to the first caller outside peft-core (a core helper may be in between)
        while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == CORE_IMPORT:
            frame = frame.f_back
        call = {
            "name": kwargs.get("name", args[0] if args else None),
            "caller": frame.f_globals.get("__name__"),
            "file": frame.f_code.co_filename,
            "line": frame.f_lineno,
            "error": None,
        }
        calls.append(call)
        try:
            return original(*args, **kwargs)
        except BaseException as exc:
            call["error"] = f"{type(exc).__name__}: {exc}"
            raise

    registry.register_peft_method = recording
    peft_core.register_peft_method = recording
    before = set(registry.registered_methods())
    steps = []
    for module in modules:
        start = len(calls)
        known = set(registry.registered_methods())
        error = None
        try:
            imported = importlib.import_module(module)
            attr = (attrs or {}).get(module)
            if attr:
                for part in attr.split("."):
                    imported = getattr(imported, part)
        except BaseException as exc:
            error = _short_error(exc)
        steps.append(
            {
                "module": module,
                "new": sorted(set(registry.registered_methods()) - known),
                "calls": calls[start:],
                "error": error,
            }
        )
    load_all_error = None
    if load_all:  # discovery through entry points: every installed one, or only `load_names`
        try:
            if load_names is None:
                peft_core.load_all_methods()
            else:
                from peft_core.discovery import load_method

                for name in load_names:
                    load_method(name)
        except BaseException as exc:
            load_all_error = _short_error(exc)
    final = {n: _describe_method(m) for n, m in registry.registered_methods().items() if n not in before}
    return {"steps": steps, "final": final, "calls": calls, "preexisting": sorted(before), "load_all_error": load_all_error}


def _installed_entry_points(dist: str) -> dict[str, str] | None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        found = distribution(dist)
    except PackageNotFoundError:
        return None
    return {ep.name: ep.value for ep in found.entry_points if ep.group == ENTRY_POINT_GROUP}


def _split_entry_point(value: str) -> tuple[str, str | None]:
    module, _, attr = value.partition(":")
    return module.strip(), (attr.strip() or None)


def _permutations(items: list[str], limit: int = 24, seed: int = 20241211) -> list[list[str]]:
    n = len(items)
    if n == 0:
        return []
    if n <= 4:
        return [list(p) for p in itertools.permutations(items)]
    orders = [items[i:] + items[:i] for i in range(n)]  # every package once in first place
    orders.append(items[::-1])
    rng = random.Random(seed)
    while len(orders) < max(limit, n + 1):
        candidate = items[:]
        rng.shuffle(candidate)
        if candidate not in orders:
            orders.append(candidate)
    return orders


def _owner_of(call: dict[str, Any], ws: Workspace) -> Package | None:
    caller = (call.get("caller") or "").split(".")[0]
    return ws.by_import().get(caller)


def check_registration(
    ws: Workspace, workers: int = 2, foreign: bool = True, graph: ImportGraph | None = None
) -> list[Problem]:
    """Entry points, registrations, names, prefixes and import-order independence of the registry.

    - each package's `peft.methods` entry points in its pyproject equal those in its installed metadata;
    - importing a package alone (fresh interpreter) registers its methods, each exactly once, and each
      registered method has an entry point of the same name;
    - loading each entry point alone registers the method it names (not nothing, not something else);
    - method names are unique across packages; a shared parameter prefix is declared (shares_prefix_with);
    - importing all packages in several orders (fresh interpreter each) gives the same registry, which
      also equals what `load_all_methods()` builds from the entry points;
    - (foreign=True) no installed distribution outside the workspace advertises a `peft.methods` entry point.
    """
    problems: list[Problem] = []
    methods = [p for p in ws.method_packages if p.import_names]
    core = ws.by_dist().get(CORE_DIST)

    # -- entry points: pyproject vs installed metadata ------------------------------------------
    entry_points: dict[str, dict[str, str]] = {}
    for pkg in ws.packages:
        declared = pkg.entry_points
        installed = _installed_entry_points(pkg.dist)
        if installed is None:
            problems.append(
                Problem(
                    kind="not-installed",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=f"{pkg.dist} is a workspace member but is not installed in this environment ({sys.prefix}).",
                    fix="Run `uv sync` at the workspace root (it installs every member), then run the tests again.",
                )
            )
        elif installed != declared:
            problems.append(
                Problem(
                    kind="entry-points-stale",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=(
                        f"The `{ENTRY_POINT_GROUP}` entry points in {pkg.file()} ({declared or 'none'}) differ from "
                        f"the installed metadata of {pkg.dist} ({installed or 'none'}); discovery uses the installed "
                        f"metadata, so it sees the old ones."
                    ),
                    fix="Run `uv sync` (editing entry points needs a reinstall); if it persists, check the "
                    "[project.entry-points.\"peft.methods\"] table for typos.",
                )
            )
        merged = dict(installed or {})
        merged.update(declared)
        entry_points[pkg.dist] = merged
        if pkg.is_core and declared:
            problems.append(
                Problem(
                    kind="core-entry-point",
                    package=pkg.dist,
                    where=pkg.file(),
                    what=f"peft-core declares `{ENTRY_POINT_GROUP}` entry points {declared}; the core provides no method.",
                    fix="Move the method into its own package under packages/ and remove the entry points from peft-core.",
                )
            )
    ep_owners: dict[str, list[str]] = {}
    for dist, eps in entry_points.items():
        for name in eps:
            ep_owners.setdefault(name, []).append(dist)

    if foreign:
        problems += _foreign_entry_points(ws)
    if core is None and not ws.method_packages:
        return problems

    # -- fresh-interpreter probes -----------------------------------------------------------------
    jobs: list[tuple[str, dict[str, Any]]] = []
    labels: list[tuple[str, Any]] = []
    for pkg in methods:
        jobs.append(("registration_probe", {"modules": pkg.import_names}))
        labels.append(("solo", pkg))
    for pkg in ws.method_packages:
        for name, value in sorted(entry_points.get(pkg.dist, {}).items()):
            module, attr = _split_entry_point(value)
            jobs.append(("registration_probe", {"modules": [module], "attrs": {module: attr} if attr else None}))
            labels.append(("entry_point", (pkg, name, value)))
    orders = _permutations([p.dist for p in methods])
    by_dist = ws.by_dist()
    for order in orders:
        modules = [m for dist in order for m in by_dist[dist].import_names]
        jobs.append(("registration_probe", {"modules": modules}))
        labels.append(("order", order))
    if methods:
        # with foreign=False (a throwaway workspace inside another environment) discover only our names
        names = None if foreign else sorted(ep_owners)
        jobs.append(("registration_probe", {"modules": [], "load_all": True, "load_names": names}))
        labels.append(("load_all", None))
    preimport = _core_externals(ws) + (graph or ImportGraph(ws)).import_time_externals()
    results = run_fresh(jobs, preimport=preimport, forbidden=ws.import_names, workers=workers)

    own: dict[str, dict[str, dict[str, Any]]] = {}  # dist -> method name -> description (+ where)
    snapshots: list[tuple[list[str], dict[str, Any]]] = []
    load_all_snapshot: dict[str, Any] | None = None
    for (label, subject), result in zip(labels, results, strict=True):
        if not result.get("ok"):
            problems.append(
                Problem(
                    kind="probe-crashed",
                    package=subject.dist if label == "solo" else "workspace",
                    where=f"fresh interpreter ({label})",
                    what=f"The registration probe itself failed:\n{result.get('error')}",
                    fix="Importing peft_core or the package crashed the interpreter; run the import by hand "
                    "(`uv run python -c 'import <package>'`) and fix the error.",
                )
            )
            continue
        value = result["value"]
        if label == "solo":
            problems += _solo_problems(ws, subject, value, entry_points.get(subject.dist, {}), own)
        elif label == "entry_point":
            problems += _entry_point_problems(subject, value)
        elif label == "order":
            snapshots.append((subject, value))
        elif label == "load_all":
            load_all_snapshot = value

    problems += _name_and_prefix_problems(ws, own, ep_owners)
    problems += _order_problems(ws, snapshots, load_all_snapshot, own)
    return problems


def _core_externals(ws: Workspace) -> list[str]:
    # What importing peft_core costs: preload it only when it is not itself a workspace member.
    return ["torch"] if CORE_IMPORT in ws.import_names else ["torch", CORE_IMPORT]


def _foreign_entry_points(ws: Workspace) -> list[Problem]:
    from importlib.metadata import entry_points

    members = set(ws.by_dist())
    problems = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        dist_name = normalize(dist.name) if dist is not None else None
        if dist_name in members:
            continue
        location = getattr(dist, "_path", None)
        problems.append(
            Problem(
                kind="foreign-entry-point",
                package=dist_name or "unknown distribution",
                where=str(location or sys.prefix),
                what=(
                    f"The environment has a `{ENTRY_POINT_GROUP}` entry point {ep.name} = {ep.value!r} from "
                    f"{dist_name or 'an unknown distribution'} {getattr(dist, 'version', '')}, which is not a "
                    f"workspace member; load_all_methods() imports it too, so the workspace can't be checked alone."
                ),
                fix="Run `uv sync` at the workspace root (it removes packages that aren't members or "
                "dependencies), or uninstall that distribution; a member that was renamed or removed leaves "
                "such stale metadata behind.",
            )
        )
    return problems


def _call_site(pkg: Package, call: dict[str, Any]) -> str:
    return f"{pkg.relfile(call['file'])}:{call['line']}"


def _solo_problems(
    ws: Workspace, pkg: Package, value: dict[str, Any], eps: dict[str, str], own: dict[str, dict[str, dict[str, Any]]]
) -> list[Problem]:
    problems: list[Problem] = []
    for step in value["steps"]:
        if step["error"]:
            problems.append(
                Problem(
                    kind="import-error",
                    package=pkg.dist,
                    where=f"module {step['module']}",
                    what=f"`import {step['module']}` fails in a fresh interpreter (with only peft_core imported first):\n{step['error']}",
                    fix="The package must import on its own. If the error is a RegistrationError, read its "
                    "message; otherwise fix the import error above.",
                )
            )
    mine = [c for c in value["calls"] if _owner_of(c, ws) is pkg]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for call in mine:
        by_name.setdefault(call["name"], []).append(call)
    own[pkg.dist] = {}
    for name, calls in sorted(by_name.items()):
        desc = dict(value["final"].get(name) or {})
        desc["where"] = _call_site(pkg, calls[0])
        desc["module_file"] = pkg.relfile(calls[0]["file"])
        if value["final"].get(name):
            own[pkg.dist][name] = desc
        if len(calls) > 1:
            sites = ", ".join(_call_site(pkg, c) for c in calls)
            problems.append(
                Problem(
                    kind="registered-twice",
                    package=pkg.dist,
                    where=sites,
                    what=f"{pkg.dist} calls register_peft_method(name={name!r}) {len(calls)} times when imported ({sites}).",
                    fix="Register each method exactly once, in the package's __init__.py; remove the other calls.",
                )
            )
        if name not in eps:
            problems.append(
                Problem(
                    kind="missing-entry-point",
                    package=pkg.dist,
                    where=f"{_call_site(pkg, calls[0])}; {pkg.file()}",
                    what=(
                        f"{pkg.dist} registers the method {name!r} but declares no `{ENTRY_POINT_GROUP}` entry point "
                        f"named {name!r}; loading a saved {name.upper()} adapter can't find the package unless the "
                        f"user imported it first."
                    ),
                    fix=(
                        f"Add to {pkg.file()}:\n[project.entry-points.\"{ENTRY_POINT_GROUP}\"]\n"
                        f"{name} = \"{pkg.import_names[0]}\"\nthen run `uv sync`."
                    ),
                )
            )
    return problems


def _entry_point_problems(subject: tuple[Package, str, str], value: dict[str, Any]) -> list[Problem]:
    pkg, name, target = subject
    step = value["steps"][0]
    where = f"{pkg.file()} [project.entry-points.\"{ENTRY_POINT_GROUP}\"] {name} = \"{target}\""
    if step["error"]:
        return [
            Problem(
                kind="entry-point-import-error",
                package=pkg.dist,
                where=where,
                what=f"Loading the entry point {name} = {target!r} in a fresh interpreter fails:\n{step['error']}",
                fix="Point the entry point at the package that registers the method (`\"<import package>\"`) and make "
                "sure it imports on its own.",
            )
        ]
    registered = sorted(value["final"])
    if name in registered:
        return []
    module = _split_entry_point(target)[0]
    if not registered:
        return [
            Problem(
                kind="entry-point-registers-nothing",
                package=pkg.dist,
                where=where,
                what=(
                    f"Importing {module!r} (the target of entry point {name!r}) registers no method at all, so "
                    f"loading a {name.upper()} adapter fails with 'registered no method named {name!r}'."
                ),
                fix=(
                    f"Call register_peft_method(name={name!r}, ...) in {module}'s __init__.py (import the config "
                    f"and model classes there), or point the entry point at the module that does."
                ),
            )
        ]
    return [
        Problem(
            kind="entry-point-registers-other",
            package=pkg.dist,
            where=where,
            what=(
                f"Entry point {name!r} imports {module!r}, which registers {registered} but not {name!r}; "
                f"discovery of {name.upper()} adapters fails and the entry point advertises a method that doesn't exist."
            ),
            fix=(
                f"Make the entry point name equal the registered method name: rename it to one of {registered} in "
                f"{pkg.file()}, or register the method as {name!r}; then run `uv sync`."
            ),
        )
    ]


def _name_and_prefix_problems(
    ws: Workspace, own: dict[str, dict[str, dict[str, Any]]], ep_owners: dict[str, list[str]]
) -> list[Problem]:
    problems: list[Problem] = []
    by_dist = ws.by_dist()
    owners: dict[str, list[str]] = {}
    for dist, methods in own.items():
        for name in methods:
            owners.setdefault(name, []).append(dist)
    for name in sorted(set(owners) | set(ep_owners)):
        dists = sorted(set(owners.get(name, [])) | set(ep_owners.get(name, [])))
        if len(dists) < 2:
            continue
        sites = "; ".join(
            own.get(d, {}).get(name, {}).get("where") or by_dist[d].file() for d in dists
        )
        problems.append(
            Problem(
                kind="duplicate-name",
                package=", ".join(dists),
                where=sites,
                what=(
                    f"The method name {name!r} is registered or advertised by {len(dists)} packages: {', '.join(dists)}. "
                    f"Installed together, the second registration raises RegistrationError, and an adapter with "
                    f"peft_type {name.upper()!r} is ambiguous."
                ),
                fix="Give each method its own name (register_peft_method(name=...), its config's peft_type and its "
                "entry point name), or merge the packages.",
            )
        )

    flat = {name: (dist, desc) for dist, methods in own.items() for name, desc in methods.items()}
    by_prefix: dict[str, list[str]] = {}
    for name, (_, desc) in flat.items():
        by_prefix.setdefault(desc["prefix"], []).append(name)
    for prefix, names in sorted(by_prefix.items()):
        for name in sorted(names):
            dist, desc = flat[name]
            shared = desc.get("shares_prefix_with")
            if shared is not None:
                continue
            for other in sorted(names):
                if other <= name:
                    continue
                odist, odesc = flat[other]
                if odesc.get("shares_prefix_with") is not None:
                    continue
                problems.append(
                    Problem(
                        kind="undeclared-shared-prefix",
                        package=", ".join(sorted({dist, odist})),
                        where=f"{desc['where']}; {odesc['where']}",
                        what=(
                            f"Methods {name!r} ({dist}) and {other!r} ({odist}) both use the parameter prefix "
                            f"{prefix!r} and neither declares shares_prefix_with: installed together, the second "
                            f"import raises RegistrationError, and their saved keys can't be told apart."
                        ),
                        fix=(
                            f"Give one of them its own prefix (register_peft_method(prefix=...) and the model class's "
                            f"`prefix`), or, if {other!r} deliberately saves {name!r}'s parameter names (as AdaLoRA "
                            f"does LoRA's), pass shares_prefix_with={name!r} in {odist} and declare {dist} as its "
                            f"dependency."
                        ),
                    )
                )
        for name in sorted(names):
            dist, desc = flat[name]
            shared = desc.get("shares_prefix_with")
            if shared is None:
                continue
            target = flat.get(shared)
            if target is None or target[1]["prefix"] != prefix:
                problems.append(
                    Problem(
                        kind="bad-shares-prefix-with",
                        package=dist,
                        where=desc["where"],
                        what=f"{name!r} declares shares_prefix_with={shared!r}, but no workspace package registers "
                        f"{shared!r} with prefix {prefix!r}.",
                        fix=f"Point shares_prefix_with at the method whose prefix {prefix!r} is reused, or drop it.",
                    )
                )
            elif target[0] != dist and not _declares(by_dist[dist], target[0]):
                problems.append(
                    Problem(
                        kind="undeclared-prefix-owner",
                        package=dist,
                        where=f"{desc['where']}; {by_dist[dist].file()}",
                        what=f"{name!r} shares the prefix of {shared!r} from {target[0]}, but {dist} does not depend "
                        f"on {target[0]}: installed alone, registering {name!r} fails because {shared!r} is unknown.",
                        fix=f"Add {target[0]} to [project].dependencies of {dist} (with a version range and a "
                        f"workspace source) and import it in {dist}'s __init__ before registering.",
                    )
                )
    return problems


def _order_problems(
    ws: Workspace,
    snapshots: list[tuple[list[str], dict[str, Any]]],
    load_all: dict[str, Any] | None,
    own: dict[str, dict[str, dict[str, Any]]],
) -> list[Problem]:
    problems: list[Problem] = []
    reference: tuple[list[str], dict[str, Any]] | None = None
    bad_orders: list[str] = []
    for order, value in snapshots:
        errors = [s for s in value["steps"] if s["error"]]
        if errors:
            step = errors[0]
            problems.append(
                Problem(
                    kind="order-import-error",
                    package=", ".join(order),
                    where=f"module {step['module']}",
                    what=(
                        f"Importing the packages in the order {' -> '.join(order)} (fresh interpreter) fails at "
                        f"{step['module']}:\n{step['error']}"
                    ),
                    fix="Packages must be importable together in any order: resolve the conflict named above "
                    "(duplicate names or prefixes are reported separately), and import any package yours builds "
                    "on at the top of your __init__.",
                )
            )
            continue
        if reference is None:
            reference = (order, value["final"])
        elif value["final"] != reference[1]:
            bad_orders.append(
                f"{' -> '.join(order)}:\n    {_diff(reference[1], value['final'])}"
            )
    if bad_orders and reference is not None:
        problems.append(
            Problem(
                kind="order-dependent-registry",
                package="workspace",
                where="registry after importing every method package",
                what=(
                    f"The registry depends on the import order. Reference order {' -> '.join(reference[0])}; "
                    f"differing orders:\n" + "\n".join(bad_orders)
                ),
                fix="Registration must not depend on what was imported before: register unconditionally in "
                "__init__, and import any package yours builds on before registering.",
            )
        )
    if load_all is not None and reference is not None:
        mine = {n for methods in own.values() for n in methods}
        got = {n: d for n, d in load_all["final"].items() if n in mine or d.get("module") in ws.by_import()}
        if load_all.get("load_all_error") or got != reference[1]:
            problems.append(
                Problem(
                    kind="load-all-mismatch",
                    package="workspace",
                    where="peft_core.load_all_methods()",
                    what=(
                        "load_all_methods() (discovery through entry points) does not build the same registry as "
                        "importing the packages: "
                        + (load_all.get("load_all_error") or _diff(reference[1], got))
                    ),
                    fix="Make every package's entry points name exactly the methods its __init__ registers "
                    "(see the entry-point problems), then run `uv sync`.",
                )
            )
    return problems


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    parts = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            parts.append(f"{name!r} missing")
        elif name not in a:
            parts.append(f"{name!r} extra: {b[name]}")
        elif a[name] != b[name]:
            parts.append(f"{name!r}: {a[name]} vs {b[name]}")
    return "; ".join(parts) or "no difference"
