"""peft-core's conformance kit on DeLoRA: every check on every case of `peft_delora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestDeloraConformance(ConformanceTests):
    method = "delora"
