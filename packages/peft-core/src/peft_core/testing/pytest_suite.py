"""The kit as pytest tests: subclass `ConformanceTests` in a test module and name the method.

    from peft_core.testing.pytest_suite import ConformanceTests

    class TestLoraConformance(ConformanceTests):
        method = "lora"

Every check becomes a test (`test_merge[llama]`, ...), parametrized over the declared cases;
checks that don't apply skip with a reason. This module imports pytest; `run_conformance` does not.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from .declare import Case, Conformance
from .harness import Context
from .runner import CHECKS, load_suite, run_check

_LOADED: dict[type, tuple[Conformance, str | None]] = {}


class ConformanceTests:
    """Base class of a package's conformance tests.

    Class attributes: `method` (required); `suite` ("module:attr" or a `Conformance`, default: the
    `peft.conformance` entry point named `method`); `hf` ("auto", True to require Hugging Face PEFT,
    False to skip those comparisons); `skip_checks` (names of checks to leave out, with a reason in
    `skip_reason`); `extra_paths` (put in front of `sys.path` of the fresh interpreter).
    """

    method: ClassVar[str] = ""
    suite: ClassVar[str | Conformance | None] = None
    hf: ClassVar[bool | str] = "auto"
    skip_checks: ClassVar[tuple[str, ...]] = ()
    skip_reason: ClassVar[str] = "left out by the package's test class"
    extra_paths: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def conformance(cls) -> tuple[Conformance, str | None]:
        if cls not in _LOADED:
            _LOADED[cls] = load_suite(cls.method or None, cls.suite)
        return _LOADED[cls]

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "conformance_case" in metafunc.fixturenames:
            suite, _ = self.conformance()
            metafunc.parametrize("conformance_case", list(suite.cases), ids=[c.name for c in suite.cases])

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_context(cls, tmp_path_factory: Any) -> Context:
        suite, ref = cls.conformance()
        workdir = tmp_path_factory.mktemp(f"conformance-{suite.method}")
        return Context(suite, workdir, ref=ref, hf=cls.hf, extra_paths=tuple(cls.extra_paths))

    def _run(self, ctx: Context, name: str, case: Case | None = None) -> None:
        if name in self.skip_checks:
            pytest.skip(self.skip_reason)
        reason = ctx.suite.not_applicable.get(name)
        if reason is not None:
            pytest.skip(f"not applicable: {reason}")
        result = run_check(ctx, CHECKS[name], case)
        if result.status == "skipped":
            pytest.skip(result.message)
        if result.status == "failed":
            pytest.fail(f"{name}: {result.message}", pytrace=False)


def _test_for(name: str, per_case: bool):
    if per_case:

        def test(self: ConformanceTests, conformance_context: Context, conformance_case: Case) -> None:
            self._run(conformance_context, name, conformance_case)

    else:

        def test(self: ConformanceTests, conformance_context: Context) -> None:  # type: ignore[misc]
            self._run(conformance_context, name)

    test.__name__ = test.__qualname__ = f"test_{name}"
    test.__doc__ = CHECKS[name].doc
    return test


for _name, _check in CHECKS.items():
    setattr(ConformanceTests, f"test_{_name}", _test_for(_name, _check.per_case))
