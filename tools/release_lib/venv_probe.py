"""Runs INSIDE a verification venv, as ``python -I venv_probe.py '<json request>'``; never imported by
the release tool (it must work with nothing but the standard library and what the venv holds).

It checks one installed distribution and prints one line ``@@RELEASE-PROBE@@{json report}``:

* the import package imports, from the venv (not from a workspace on ``sys.path``);
* each of the distribution's ``peft.methods`` entry points loads and registers its method under
  that name (``peft_core.get_peft_method``);
* peft-core's conformance kit (``peft_core.testing.run_conformance``, without the Hugging Face PEFT
  comparisons) runs every check on the cases the method declares through its ``peft.conformance``
  entry point of the same name. ``phase``: ``bare`` runs the cases that need nothing beyond the
  declared dependencies and lists the others as pending, with the modules their tiny models need
  (e.g. transformers) as requirements; ``extra`` runs only those others, after the tool installed
  what they ask for. A method without a ``peft.conformance`` entry point is a failure: the kit is
  how a method shows it keeps the contract every method keeps.
"""

import importlib
import importlib.metadata as md
import importlib.util
import json
import os
import re
import sys
import time
import traceback
import warnings

MARK = "@@RELEASE-PROBE@@"
METHODS_GROUP = "peft.methods"
KIT_GROUP = "peft.conformance"


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def own_entry_points(group, dist):
    return [ep for ep in md.entry_points(group=group) if ep.dist is not None and canon(ep.dist.name) == canon(dist)]


def check_import(import_name, rep):
    try:
        mod = importlib.import_module(import_name)
    except Exception:
        rep["errors"].append(f"import {import_name} failed:\n" + traceback.format_exc())
        return
    rep["module_file"] = getattr(mod, "__file__", None)
    where = os.path.realpath(rep["module_file"] or "")
    if not where.startswith(os.path.realpath(sys.prefix) + os.sep):
        rep["errors"].append(f"{import_name} was imported from {where}, not from the venv {sys.prefix}")


def load_methods(dist, rep):
    """Load the distribution's method entry points; returns the names that registered."""
    names = []
    for ep in own_entry_points(METHODS_GROUP, dist):
        rep["entry_points"].append(f"{ep.name} = {ep.value}")
        try:
            ep.load()
            import peft_core

            method = peft_core.get_peft_method(ep.name)
        except Exception:
            rep["errors"].append(f"entry point {ep.name} = {ep.value} failed to load or register:\n"
                                 + traceback.format_exc())
            continue
        top = ep.value.split(":")[0].split(".")[0]
        if method.module != top:
            rep["errors"].append(f"method {ep.name!r} is registered by {method.module}, not by {top} "
                                 f"(the entry point's package)")
            continue
        rep["registered"].append(ep.name)
        names.append(ep.name)
    return names


def selected(method, case_id, entry, phase, only):
    """bare: the cases that need nothing more; extra: the cases the bare phase left pending."""
    if phase == "extra":
        return [method, case_id] in only
    return not entry["requires"]


def _ran_before(suite, phase):
    """The once-per-suite checks the bare phase ran already: the declaration, and the fresh interpreter
    where some case is on a plain module (the kit reloads those there, sparing a second interpreter
    that imports transformers)."""
    if phase != "extra":
        return []
    skip = ["declaration"]
    if any(not getattr(case.model, "requires", ()) for case in suite.cases):
        skip.append("fresh_interpreter")
    return skip


def run_kit(testing, dist, method, phase, only, rep):
    """The conformance kit's checks, case by case (see the module docstring)."""
    try:
        suite, _ = testing.load_suite(method)
    except Exception:
        rep["errors"].append(f"loading {method!r}'s {KIT_GROUP} declaration failed:\n" + traceback.format_exc())
        return
    entries = {}
    for case in suite.cases:
        missing = [m for m in getattr(case.model, "requires", ()) if importlib.util.find_spec(m) is None]
        entries[case.name] = {"method": method, "id": case.name, "requires": missing, "status": "pending",
                              "seconds": None, "warnings": [], "checks": {}}
    rep["cases"] += entries.values()
    chosen = [name for name, e in entries.items() if selected(method, name, e, phase, only)]
    if not chosen and (phase == "extra" or suite.cases):
        # nothing to run now; where every case needs more (transformers), the extra phase runs them and the
        # suite-level checks (running those here with no case would report a declaration without cases)
        return
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            report = testing.run_conformance(method, cases=chosen, hf=False, skip=_ran_before(suite, phase))
        except Exception:
            rep["errors"].append(f"run_conformance({method!r}) crashed:\n" + traceback.format_exc())
            return
    seconds = round(time.perf_counter() - start, 2)
    for name in chosen:
        entries[name]["status"] = "passed"
        entries[name]["seconds"] = seconds
    for result in report.results:
        targets = [entries[result.case]] if result.case in entries else [entries[n] for n in chosen]
        for entry in targets:
            entry["checks"][result.status] = entry["checks"].get(result.status, 0) + 1
            if result.status == "failed":
                entry["status"] = "failed"
        if result.status == "failed":
            rep["errors"].append(f"conformance check {result.label} of {method!r} failed: {result.message}")


def run_cases(dist, methods, phase, only, rep):
    try:
        testing = importlib.import_module("peft_core.testing")
    except Exception:
        rep["errors"].append("import peft_core.testing failed:\n" + traceback.format_exc())
        return
    if not hasattr(testing, "run_conformance"):
        rep["errors"].append(f"the installed peft_core.testing ({getattr(testing, '__file__', '?')}) has no "
                             "conformance kit (run_conformance): verify against a peft-core that ships it")
        return
    for method in methods:
        if not [ep for ep in own_entry_points(KIT_GROUP, dist) if ep.name == method]:
            rep["errors"].append(
                f"method {method!r} of {dist} declares no conformance cases, so the release tool cannot check it. "
                f"Fix: add [project.entry-points.\"{KIT_GROUP}\"] {method} = \"<module>:<function returning a "
                f"peft_core.testing.Conformance>\" to its pyproject.toml (see docs/write-a-method.md)")
            continue
        run_kit(testing, dist, method, phase, only, rep)


def main():
    req = json.loads(sys.argv[1])
    rep = {"module_file": None, "entry_points": [], "registered": [], "cases": [], "errors": []}
    try:
        check_import(req["import_name"], rep)
        methods = load_methods(req["dist"], rep) if not rep["errors"] else []
        if methods:
            run_cases(req["dist"], methods, req["phase"], req.get("only", []), rep)
    except Exception:
        rep["errors"].append("probe crashed:\n" + traceback.format_exc())
    print(MARK + json.dumps(rep), flush=True)


if __name__ == "__main__":
    main()
