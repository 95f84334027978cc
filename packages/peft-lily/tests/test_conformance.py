"""peft-core's conformance kit on Lily: every check on every case of `peft_lily.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestLilyConformance(ConformanceTests):
    method = "lily"
