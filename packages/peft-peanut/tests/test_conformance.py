"""peft-core's conformance kit on `peanut`: every check on every case of `peft_peanut.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPeanutConformance(ConformanceTests):
    method = "peanut"
