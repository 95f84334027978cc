"""peft-core's conformance kit on BOFT: every check on every case of `peft_boft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestBOFTConformance(ConformanceTests):
    method = "boft"
