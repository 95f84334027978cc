"""peft-core's conformance kit on AdaMSS: every check on every case of `peft_adamss.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestAdamssConformance(ConformanceTests):
    method = "adamss"
