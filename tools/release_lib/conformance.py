"""The one seam between the release tool and the method checks that run inside a verification venv.

``check_installed(py, dist, import_name, phase)`` runs ``venv_probe.py`` with the venv's interpreter
(``python -I``: no workspace on ``sys.path``, no user site) and returns its report. Everything the
probe runs comes from the venv: the built wheels and what they declare; the cases are the method's
``peft.conformance`` declaration, run by peft-core's conformance kit (``peft_core.testing``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .proc import run

PROBE = Path(__file__).with_name("venv_probe.py")
MARK = "@@RELEASE-PROBE@@"


@dataclass
class ProbeReport:
    dist: str
    module_file: str | None = None
    entry_points: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    cases: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def pending_requirements(self) -> list[str]:
        """What the cases left pending ask for (installed before the ``extra`` phase)."""
        out: list[str] = []
        for case in self.cases:
            if case["status"] == "pending":
                out += [r for r in case["requires"] if r not in out]
        return out

    def pending(self) -> list[tuple[str, str]]:
        return [(c["method"], c["id"]) for c in self.cases if c["status"] == "pending"]

    def merge_extra(self, extra: ProbeReport) -> None:
        """Take the results of the ``extra`` phase for the cases the ``bare`` phase left pending."""
        done = {(c["method"], c["id"]): c for c in extra.cases if c["status"] != "pending"}
        self.cases = [{**done[(c["method"], c["id"])], "requires": c["requires"]} if (c["method"], c["id"]) in done
                      else c for c in self.cases]
        self.errors += [e for e in extra.errors if e not in self.errors]


def check_installed(py: Path, dist: str, import_name: str, phase: str, cwd: Path,
                    pycache: Path | None = None, only: list[tuple[str, str]] = ()) -> ProbeReport:
    """Probe the installed distribution ``dist`` in the venv of ``py`` (see venv_probe.py).

    ``phase``: "bare" (the cases that need nothing beyond the declared dependencies) or "extra"
    (the cases ``only`` names: (method, case id) pairs the bare phase left pending).
    ``pycache``: where the interpreter keeps bytecode (``-X pycache_prefix``), see ``verify``."""
    request = json.dumps({"dist": dist, "import_name": import_name, "phase": phase, "only": [list(o) for o in only]})
    options = ["-X", f"pycache_prefix={pycache}"] if pycache else []
    proc = run([str(py), "-I", *options, str(PROBE), request], cwd, check=False)
    report = None
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            report = json.loads(line[len(MARK):])
    if report is None:
        return ProbeReport(dist, errors=[f"the probe crashed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"])
    out = ProbeReport(dist, **report)
    if proc.returncode != 0 and not out.errors:
        out.errors.append(f"the probe exited {proc.returncode}:\n{proc.stderr}")
    return out
