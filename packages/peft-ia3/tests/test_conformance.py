"""peft-core's conformance kit on (IA)³: every check on every case of `peft_ia3.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestIA3Conformance(ConformanceTests):
    method = "ia3"
