"""peft-core's conformance kit on `deft`: every check on every case of `peft_deft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestDeftConformance(ConformanceTests):
    method = "deft"
