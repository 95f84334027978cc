"""peft-core's conformance kit on OFT: every check on every case of `peft_oft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestOFTConformance(ConformanceTests):
    method = "oft"
