"""peft-core's conformance kit on SHiRA: every check on every case of `peft_shira.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestShiraConformance(ConformanceTests):
    method = "shira"
