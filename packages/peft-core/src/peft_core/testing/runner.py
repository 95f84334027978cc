"""Running the kit: finding a method's declaration, running the checks, reporting.

    from peft_core.testing import run_conformance

    report = run_conformance("lora")   # every check, every case; nothing raised
    print(report.summary())
    report.raise_for_failures()        # ConformanceError listing every failure

Used by the pytest base class (`peft_core.testing.pytest_suite.ConformanceTests`), by
`python -m peft_core.testing METHOD`, and by release tooling in a fresh venv (no pytest needed).
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

from . import checks_adapters, checks_config, checks_dtype, checks_forward, checks_hf, checks_io, checks_merge, fresh
from .declare import CONFORMANCE_ENTRY_POINT_GROUP, Case, Conformance
from .harness import CheckFailed, CheckSkipped, Context, require_model


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[..., None]
    per_case: bool = True

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


# In the order they run; names are stable (select or skip them with `checks=` / `skip=`).
CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("declaration", checks_config.check_declaration, per_case=False),
        Check("changes_output", checks_forward.check_changes_output),
        Check("init", checks_forward.check_init),
        Check("train_step", checks_forward.check_train_step),
        Check("disable_adapter", checks_forward.check_disable_adapter),
        Check("merge", checks_merge.check_merge),
        Check("unmerge", checks_merge.check_unmerge),
        Check("merge_and_unload", checks_merge.check_merge_and_unload),
        Check("unload", checks_merge.check_unload),
        Check("adapters", checks_adapters.check_adapters),
        Check("mixed_batch", checks_adapters.check_mixed_batch),
        Check("save_load", checks_io.check_save_load),
        Check("state_dict", checks_io.check_state_dict),
        Check("low_cpu_mem_usage", checks_io.check_low_cpu_mem_usage),
        Check("dtypes", checks_dtype.check_dtypes),
        Check("to", checks_dtype.check_to),
        Check("bad_config", checks_config.check_bad_config),
        Check("hf_files", checks_hf.check_hf_files),
        Check("fresh_interpreter", fresh.check_fresh_interpreter, per_case=False),
    )
}


class ConformanceError(AssertionError):
    """Raised by `ConformanceReport.raise_for_failures`; the message lists every failed check."""


@dataclass(frozen=True)
class CheckResult:
    check: str
    case: str | None
    status: Literal["passed", "failed", "skipped"]
    message: str = ""

    @property
    def label(self) -> str:
        return f"{self.check}[{self.case}]" if self.case else self.check


@dataclass
class ConformanceReport:
    method: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        counts = {s: sum(r.status == s for r in self.results) for s in ("passed", "failed", "skipped")}
        lines = [f"conformance of {self.method!r}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"]
        for r in self.results:
            if r.status != "passed":
                lines.append(f"  {r.status.upper()} {r.label}: {r.message}")
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if self.failures:
            raise ConformanceError(self.summary())

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "ok": self.ok, "results": [r.__dict__ for r in self.results]}


def load_suite(method: str | None = None, ref: str | Conformance | None = None) -> tuple[Conformance, str | None]:
    """(declaration, its import reference) for `ref` ("module:attr", or a Conformance), or else for the
    `peft.conformance` entry point named `method`. The referenced object may be a function returning it."""
    if isinstance(ref, Conformance):
        return ref, None
    if ref is None:
        if method is None:
            raise ValueError("give a method name or a suite reference")
        ref = _entry_point_ref(method)
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise
        raise LookupError(
            f"The conformance reference {ref!r}{_for(method)} names the module {module_name!r}, which is not installed: "
            f"fix the {CONFORMANCE_ENTRY_POINT_GROUP!r} entry point (a module in the package's src/, not in tests/) "
            f"and reinstall the package."
        ) from exc
    for part in (attr or "conformance").split("."):
        if not hasattr(obj, part):
            raise LookupError(
                f"The conformance reference {ref!r}{_for(method)} names {attr or 'conformance'!r}, which module "
                f"{module_name!r} does not define: fix the entry point (`module:function`) and reinstall the package."
            )
        obj = getattr(obj, part)
    suite = obj() if callable(obj) and not isinstance(obj, Conformance) else obj
    if not isinstance(suite, Conformance):
        raise TypeError(f"{ref} gave {type(suite).__name__}, not a peft_core.testing.Conformance")
    if method is not None and suite.method != method:
        raise ValueError(f"{ref} declares conformance for {suite.method!r}, not {method!r}")
    return suite, ref


def _for(method: str | None) -> str:
    return f" (method {method!r})" if method else ""


def _entry_point_ref(method: str) -> str:
    from importlib.metadata import entry_points

    for ep in entry_points(group=CONFORMANCE_ENTRY_POINT_GROUP):
        if ep.name == method:
            return ep.value
    raise LookupError(
        f"No installed package declares conformance cases for {method!r}. Add to its pyproject.toml:\n"
        f'[project.entry-points."{CONFORMANCE_ENTRY_POINT_GROUP}"]\n{method} = "<package>.conformance:conformance"\n'
        f"and reinstall it (see docs/write-a-method.md)."
    )


def run_check(ctx: Context, check: Check, case: Case | None) -> CheckResult:
    """Run one check (on one case, for per-case checks) and turn its outcome into a result."""
    label = case.name if case is not None else None
    try:
        if case is not None:
            require_model(case)
            check.run(ctx, case)
        else:
            check.run(ctx)
    except CheckSkipped as exc:
        return CheckResult(check.name, label, "skipped", str(exc))
    except CheckFailed as exc:
        return CheckResult(check.name, label, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - an unexpected crash of the method is a failure too
        return CheckResult(check.name, label, "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
    return CheckResult(check.name, label, "passed")


def selected_checks(checks: Iterable[str] | None = None, skip: Iterable[str] = ()) -> list[Check]:
    names = list(CHECKS) if checks is None else list(checks)
    unknown = sorted((set(names) | set(skip)) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown conformance checks {unknown}; known: {list(CHECKS)}")
    return [CHECKS[n] for n in names if n not in set(skip)]


def run_conformance(
    method: str | Conformance,
    *,
    suite: str | Conformance | None = None,
    checks: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    cases: Sequence[str] | None = None,
    hf: bool | str = "auto",
    extra_paths: Sequence[str] = (),
    workdir: str | Path | None = None,
) -> ConformanceReport:
    """Run the conformance checks of a method; returns the report (call `raise_for_failures()` on it).

    `method` is a method name (its declaration comes from the `peft.conformance` entry point, or
    from `suite`, a "module:attr" reference or a `Conformance`) or a `Conformance` itself.
    `checks` / `skip` select checks by name (see `CHECKS`), `cases` selects cases by name. `hf`:
    "auto" compares with Hugging Face PEFT when its real distribution is installed, True requires it,
    False skips those comparisons. `extra_paths` go in front of `sys.path` of the fresh interpreter.
    """
    if isinstance(method, Conformance):
        loaded, ref = method, None
    else:
        loaded, ref = load_suite(method, suite)
    chosen = [c for c in loaded.cases if cases is None or c.name in cases]
    if cases is not None and len(chosen) != len(set(cases)):
        raise ValueError(f"unknown cases {sorted(set(cases) - {c.name for c in chosen})}; declared: {[c.name for c in loaded.cases]}")
    loaded = dataclasses.replace(loaded, cases=tuple(chosen))
    tmp = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"peft-conformance-{loaded.method}-"))
    ctx = Context(loaded, tmp, ref=ref, hf=hf, extra_paths=tuple(extra_paths))
    report = ConformanceReport(loaded.method)
    try:
        selected_checks(loaded.not_applicable)  # names must be real checks
        for check in selected_checks(checks, skip):
            reason = loaded.not_applicable.get(check.name)
            if reason is not None:
                report.results.append(CheckResult(check.name, None, "skipped", f"not applicable: {reason}"))
                continue
            if check.per_case:
                report.results += [run_check(ctx, check, case) for case in loaded.cases]
            else:
                report.results.append(run_check(ctx, check, None))
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report
