"""peft-core's conformance kit on FourierFT: every check on every case of `peft_fourierft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestFourierFTConformance(ConformanceTests):
    method = "fourierft"
