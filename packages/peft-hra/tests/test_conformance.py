"""peft-core's conformance kit on HRA: every check on every case of `peft_hra.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestHRAConformance(ConformanceTests):
    method = "hra"
