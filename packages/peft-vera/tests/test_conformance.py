"""peft-core's conformance kit on VeRA: every check on every case of `peft_vera.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestVeraConformance(ConformanceTests):
    method = "vera"
