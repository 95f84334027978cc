"""peft-core's conformance kit on C3A: every check on every case of `peft_c3a.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestC3AConformance(ConformanceTests):
    method = "c3a"
