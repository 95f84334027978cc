"""peft-core's conformance kit on C3A: every check on every case of `peft_c3a.conformance`."""

import pytest

ConformanceTests = pytest.importorskip(
    "peft_core.testing.pytest_suite", reason="peft-core's conformance kit (issue 16) is not on this branch yet"
).ConformanceTests


class TestC3AConformance(ConformanceTests):
    method = "c3a"
