"""peft-core's conformance kit on `unilora`: every check on every case of `peft_unilora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestUniloraConformance(ConformanceTests):
    method = "unilora"
