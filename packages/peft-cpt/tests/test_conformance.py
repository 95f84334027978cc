"""peft-core's conformance kit on CPT: every check on every case of `peft_cpt.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestCPTConformance(ConformanceTests):
    method = "cpt"
