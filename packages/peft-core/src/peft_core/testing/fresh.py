"""The fresh-interpreter check: adapters saved here load in a new Python process that imports only
peft-core, so the method package must be found through its `peft.methods` entry point.

One process checks the cases on plain modules (or, where every case needs a module such as
transformers, the first case): what only a new process shows is discovery through the entry points,
and starting Python and torch, let alone importing transformers, costs seconds (the kit runs for every
method package in CI); every case's files are reloaded in-process by `save_load`. The child gets this process's `sys.path` (so test-only packages made installable with a
`.dist-info` on an extra path work too) and the expected outputs; it reports back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from ..registry import get_peft_method
from .harness import OTHER, CheckFailed, CheckSkipped, Context, adapted, quiet, run

RESULT_MARK = "@@PEFT-CONFORMANCE-FRESH@@"
_BOOT = (
    "import json, sys; spec = json.load(open(sys.argv[1], encoding='utf-8')); sys.path[:0] = spec['sys_path']; "
    "from peft_core.testing._fresh_child import main; sys.exit(main(spec))"
)


def _fresh_cases(ctx: Context) -> list:
    """The cases on models that need no extra module, else the first case that can run here."""
    runnable = [case for case in ctx.suite.cases if case.model.missing() is None]
    return [case for case in runnable if not case.model.requires] or runnable[:1]


def check_fresh_interpreter(ctx: Context) -> None:
    """Save the cases on plain modules (two adapters each) here; a new interpreter that imports only
    peft_core must discover the method through its entry point, get the method's class from
    `PeftConfig.from_pretrained`, and reproduce both adapters' outputs bit for bit."""
    if ctx.ref is None:
        raise CheckSkipped("the suite was given as an object; pass its import reference ('module:attr') to check it")
    method = get_peft_method(ctx.suite.method)
    cases = []
    for case in _fresh_cases(ctx):
        model = adapted(ctx.suite, case, second=True)
        directory = ctx.tmp(f"fresh-{case.name}")
        quiet(lambda m=model, d=directory: m.save_pretrained(d))
        expected = {"default": run(model, case)}
        model.set_adapter(OTHER)
        expected[OTHER] = run(model, case)
        torch.save(expected, directory / "expected.pt")
        cases.append({"name": case.name, "dir": str(directory)})
    if not cases:
        raise CheckSkipped("no case can run here (their models need modules that are not installed)")
    spec = {
        "method": ctx.suite.method,
        "ref": ctx.ref,
        "config_class": f"{method.config_cls.__module__}.{method.config_cls.__qualname__}",
        "sys_path": [os.path.abspath(p) for p in (*ctx.extra_paths, *sys.path) if p],
        "cases": cases,
        "threads": torch.get_num_threads(),  # kernels (e.g. convolutions) may round differently with other counts
    }
    spec_path = ctx.tmp("fresh") / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _BOOT, str(spec_path)], capture_output=True, text=True, timeout=600,
        cwd=str(ctx.workdir),
    )
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    if result is None:
        raise CheckFailed(f"the fresh interpreter crashed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    if result["problems"]:
        raise CheckFailed("in a fresh interpreter: " + "; ".join(result["problems"]))
