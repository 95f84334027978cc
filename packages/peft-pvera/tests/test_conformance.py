"""peft-core's conformance kit on PVeRA: every check on every case of `peft_pvera.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPveraConformance(ConformanceTests):
    method = "pvera"
