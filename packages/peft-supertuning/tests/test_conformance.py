"""peft-core's conformance kit on `supertuning`: every check on every case of `peft_supertuning.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestSupertuningConformance(ConformanceTests):
    method = "supertuning"
