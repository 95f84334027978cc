"""peft-core's conformance kit on HiRA: every check on every case of `peft_hira.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestHiraConformance(ConformanceTests):
    method = "hira"
