"""peft-core's conformance kit on BEFT: every check on every case of `peft_beft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestBeftConformance(ConformanceTests):
    method = "beft"
