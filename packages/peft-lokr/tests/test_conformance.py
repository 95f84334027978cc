"""peft-core's conformance kit on LoKr: every check on every case of `peft_lokr.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestLokrConformance(ConformanceTests):
    method = "lokr"
