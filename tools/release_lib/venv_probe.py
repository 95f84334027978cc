"""Runs INSIDE a verification venv, as ``python -I venv_probe.py '<json request>'``; never imported by
the release tool (it must work with nothing but the standard library and what the venv holds).

It checks one installed distribution and prints one line ``@@RELEASE-PROBE@@{json report}``:

* the import package imports, from the venv (not from a workspace on ``sys.path``);
* each of the distribution's ``peft.methods`` entry points loads and registers its method under
  that name (``peft_core.get_peft_method``);
* the method's conformance cases run (``phase``: ``bare`` runs the cases that need nothing beyond
  the declared dependencies and lists the others as pending; ``extra`` runs only those others,
  after the tool installed what they ask for).

Cases, until the conformance kit of ``peft_core.testing`` lands: ``peft_core.testing.smoke_test``
with the keyword arguments the method package declares through a ``peft.smoke_cases`` entry point
of the same name (a callable returning a list of dicts; optional keys ``id`` and ``requires``, a
list of requirements the case needs, e.g. transformers for a tiny Llama). A method that declares
none gets one case, ``smoke_test(name)``.
"""

import importlib
import importlib.metadata as md
import json
import os
import re
import sys
import time
import traceback
import warnings

MARK = "@@RELEASE-PROBE@@"
METHODS_GROUP = "peft.methods"
CASES_GROUP = "peft.smoke_cases"


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


def declared_cases(dist, method, rep):
    """The method's smoke cases: [(id, requires, kwargs)]."""
    eps = [ep for ep in own_entry_points(CASES_GROUP, dist) if ep.name == method]
    if not eps:
        return [("default", [], {})]
    try:
        raw = list(eps[0].load()())
    except Exception:
        rep["errors"].append(f"{CASES_GROUP} entry point {eps[0].name} = {eps[0].value} failed:\n"
                             + traceback.format_exc())
        return []
    cases = []
    for n, case in enumerate(raw):
        if not isinstance(case, dict):
            rep["errors"].append(f"{eps[0].value} case {n} is {type(case).__name__}, expected a dict of "
                                 "smoke_test keyword arguments")
            continue
        kwargs = dict(case)
        cases.append((str(kwargs.pop("id", n)), list(kwargs.pop("requires", [])), kwargs))
    if not cases:
        rep["errors"].append(f"{eps[0].value} declares no case")
    return cases


def run_cases(dist, methods, phase, rep):
    try:
        from peft_core.testing import smoke_test
    except Exception:
        rep["errors"].append("import peft_core.testing failed:\n" + traceback.format_exc())
        return
    for method in methods:
        for case_id, requires, kwargs in declared_cases(dist, method, rep):
            entry = {"method": method, "id": case_id, "requires": requires, "status": "pending",
                     "seconds": None, "warnings": []}
            rep["cases"].append(entry)
            if bool(requires) != (phase == "extra"):
                continue
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    smoke_test(method, **kwargs)
                    entry["status"] = "passed"
                except Exception:
                    entry["status"] = "failed"
                    rep["errors"].append(f"smoke_test({method!r}) case {case_id!r} failed:\n"
                                         + traceback.format_exc())
            entry["seconds"] = round(time.perf_counter() - start, 2)
            entry["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:5]


def main():
    req = json.loads(sys.argv[1])
    rep = {"module_file": None, "entry_points": [], "registered": [], "cases": [], "errors": []}
    try:
        check_import(req["import_name"], rep)
        methods = load_methods(req["dist"], rep) if not rep["errors"] else []
        if methods:
            run_cases(req["dist"], methods, req["phase"], rep)
    except Exception:
        rep["errors"].append("probe crashed:\n" + traceback.format_exc())
    print(MARK + json.dumps(rep), flush=True)


if __name__ == "__main__":
    main()
